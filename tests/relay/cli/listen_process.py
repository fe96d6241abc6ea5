"""`relay listen` as a real subprocess, and what a local client sends it (test_listen*).

The listener runs as `python -m relay.cli listen` against the Redis of the settings given
(RELAY_REDIS_URL and friends in its environment), so signals and stdout are its own.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from standardwebhooks import Webhook

from relay.cli.embedded_redis import free_port
from relay.settings import Settings
from tests.conftest import settings_env
from tests.support import eventually

READY = "Ctrl-C stops listening"


class ListenProcess:
    """A running `relay listen`, its stdout collected line by line."""

    def __init__(self, settings: Settings, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.lines: list[str] = []
        env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "relay.cli", "listen", "--port", str(self.port), *args]
        self.popen = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="backslashreplace",  # a raw control byte must show up in the test's eyes
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        eventually(
            lambda: self.printed(READY) or self.popen.poll() is not None,
            30,
            what="relay listen to start",
        )
        assert self.popen.poll() is None, "\n".join(self.lines)
        self.sub_id = self._field("subscription")
        self.secret = self._field("secret")

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def printed(self, text: str) -> list[str]:
        return [line for line in list(self.lines) if text in line]

    def wait_for(self, text: str, timeout: float = 20.0) -> list[str]:
        """The lines holding `text`, once there is one."""
        found: list[str] = eventually(
            lambda: self.printed(text), timeout, what=f"relay listen to print {text!r}"
        )
        return found

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 20.0) -> int:
        """Send `sig` and wait for the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        code = self.popen.wait(timeout)
        self._close()
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)
        self._close()

    def _close(self) -> None:
        """Everything printed is read, then the pipe closed."""
        self._reader.join(10)
        if self.popen.stdout is not None:
            self.popen.stdout.close()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def _field(self, name: str) -> str:
        """The value after `name` in the banner (`  secret        whsec_...`)."""
        [line] = [line for line in self.lines if line.split()[:1] == [name]]
        return line.split()[1]


@contextmanager
def listening(settings: Settings, *args: str) -> Iterator[ListenProcess]:
    """A `relay listen` for the block; stopped with Ctrl-C after it (killed if it hangs)."""
    process = ListenProcess(settings, *args)
    try:
        yield process
    finally:
        try:
            process.stop()
        except subprocess.TimeoutExpired:
            process.kill()


def signed(
    secret: str, body: bytes, *, msg_id: str = "msg_1_s", at: float | None = None
) -> dict[str, str]:
    """A request's signature headers made with the standardwebhooks library (webhook-*) and
    hmac (X-LD-Signature), as a sender other than relay would make them."""
    stamp = int(time.time() if at is None else at)
    key: str | bytes = secret if secret.startswith("whsec_") else secret.encode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": Webhook(key).sign(msg_id, datetime.fromtimestamp(stamp, UTC), body),
        "x-ld-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


def exchange(port: int, request: bytes, *, timeout: float = 5.0) -> bytes:
    """Write `request` as is on a new connection to 127.0.0.1:port; what came back before
    the listener closed it (or `timeout` passed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def post(port: int, body: bytes, headers: dict[str, str]) -> bytes:
    """A complete POST with Content-Length and Connection: close; the answer."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\nContent-Type: application/json\r\n{head}\r\n"
    ).encode() + body
    return exchange(port, request)
