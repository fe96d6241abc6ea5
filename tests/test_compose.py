"""docker-compose.yml and the Dockerfile run real `relay` commands against a durable Redis.

Docker is not needed: the files are parsed and checked against the CLI's own parser.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay.cli.main import cmd_beat, cmd_serve, cmd_worker, parse_args

ROOT = Path(__file__).resolve().parents[1]


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


def test_compose_has_redis_api_worker_beat() -> None:
    """The deployment has the four parts DESIGN.md names, and nothing unnamed."""
    assert set(_services()) == {"redis", "api", "worker", "beat"}


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
    url = env["RELAY_REDIS_URL"]
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
