"""The whole relay on one machine: what `relay up` runs and supervises.

Redis (the embedded one unless `RELAY_REDIS_URL` is set), the API, a Celery worker and the
beat schedule, each its own process. The data directory holds the embedded Redis's data
and AOF, the generated admin token, the beat schedule, and while `relay up` runs, the
embedded Redis's URL (so `relay token ...` in another terminal finds it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from relay.embedded import free_port, start_redis
from relay.errors import StoreError
from relay.settings import Settings
from relay.store.client import check_durability, connect
from relay.store.tokens import generate_secret
from relay.supervisor import Child, Supervisor, spawn

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin-token"
REDIS_URL_FILE = "redis.url"
BEAT_SCHEDULE_FILE = "celerybeat-schedule"
LOCK_FILE = "relay.lock"
METRICS_DIR = "metrics"  # prometheus-client multiprocess files of the children


class StackError(RuntimeError):
    """`relay up` cannot start (the port is taken, the data directory is in use)."""


@dataclass(frozen=True)
class AdminToken:
    secret: str
    file: Path | None  # None when it came from RELAY_ADMIN_TOKEN


def admin_token(data_dir: Path, given: str | None) -> AdminToken:
    """`given`, or the token kept in the data directory, or a new one kept there (mode 0600)."""
    if given:
        return AdminToken(given, None)
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists() and path.read_text().strip():
        return AdminToken(path.read_text().strip(), path)
    secret = generate_secret()
    path.unlink(missing_ok=True)
    # created with 0600 from the start: never readable by others, not even briefly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return AdminToken(secret, path)


def child_commands(host: str, port: int, data_dir: Path) -> dict[str, list[str]]:
    """The API, worker and beat, each run by this Python as `python -m relay.cli ...`."""
    relay = [sys.executable, "-m", "relay.cli"]
    return {
        "api": [*relay, "serve", "--host", host, "--port", str(port)],
        "worker": [*relay, "worker"],
        "beat": [*relay, "beat", "--schedule", str(data_dir / BEAT_SCHEDULE_FILE)],
    }


def child_environment(redis_url: str, token: str, data_dir: Path) -> dict[str, str]:
    """This process's environment plus what every child needs to find Redis and auth."""
    return {
        **os.environ,
        "RELAY_REDIS_URL": redis_url,
        "RELAY_ADMIN_TOKEN": token,
        "RELAY_DATA_DIR": str(data_dir),
        # API and worker write their metrics there; a scrape of the API merges them
        "PROMETHEUS_MULTIPROC_DIR": str(data_dir / METRICS_DIR),
    }


def fresh_metrics_dir(data_dir: Path) -> Path:
    """An empty metrics directory: files of a previous run would add to this run's counters."""
    path = data_dir / METRICS_DIR
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def base_url(host: str, port: int) -> str:
    """Where a client on this machine reaches an API bound to `host`."""
    if host in {"", "0.0.0.0", "::"}:
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_up(settings: Settings, *, host: str, port: int, data_dir: Path) -> None:
    """Start everything, supervise it until SIGINT/SIGTERM, stop it all."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(data_dir):
        _require_free_port(host, port)
        token = admin_token(data_dir, settings.admin_token)
        fresh_metrics_dir(data_dir)
        redis_children, redis_url = _redis(settings, data_dir)
        env = child_environment(redis_url, token.secret, data_dir)
        apps = [
            Child(name, spawn(argv, env))
            for name, argv in child_commands(host, port, data_dir).items()
        ]
        supervisor = Supervisor([*redis_children, *apps])
        stopped = threading.Event()
        banner = _banner(
            host, port, token, redis_url, embedded=bool(redis_children), data_dir=data_dir
        )
        threading.Thread(
            target=_announce_when_up, args=(base_url(host, port), banner, stopped), daemon=True
        ).start()
        try:
            supervisor.run()
        finally:
            stopped.set()
            (data_dir / REDIS_URL_FILE).unlink(missing_ok=True)
    log.info("relay stopped")


def _redis(settings: Settings, data_dir: Path) -> tuple[list[Child], str]:
    """The embedded Redis as a supervised child, or none when RELAY_REDIS_URL is given."""
    if settings.redis_url:
        warn_if_not_durable(settings.redis_url)
        return [], settings.redis_url
    port = free_port()
    # a restart reuses the directory and port: Redis reloads its AOF, clients reconnect
    child = Child("redis", lambda: start_redis(data_dir, port=port).process, tier=0, grace=2.0)
    url = f"redis://127.0.0.1:{port}/0"
    (data_dir / REDIS_URL_FILE).write_text(url + "\n")
    return [child], url


def warn_if_not_durable(url: str) -> None:
    """Log a warning when the Redis at `url` can lose acknowledged data (AOF off, eviction)."""
    try:
        check_durability(connect(url))  # logs each warning itself
    except StoreError as exc:
        log.warning("could not check Redis durability settings: %s", exc)


@contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's lock: two Redis servers on one AOF would corrupt it."""
    with open(data_dir / LOCK_FILE, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(f"another `relay up` is using {data_dir}") from None
        yield


def _require_free_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StackError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _banner(
    host: str, port: int, token: AdminToken, redis_url: str, *, embedded: bool, data_dir: Path
) -> str:
    url = base_url(host, port)
    # a token from the environment came from the operator: no need to echo a secret
    shown = f"{token.secret}  (kept in {token.file})" if token.file else "set by RELAY_ADMIN_TOKEN"
    where = f"embedded; data and AOF in {data_dir}" if embedded else "RELAY_REDIS_URL"
    return "\n".join(
        [
            "relay is up",
            f"  API          {url}  (docs: {url}/docs)",
            f"  admin token  {shown}",
            f"  Redis        {redis_url}  ({where})",
            "Press Ctrl-C to stop.",
        ]
    )


def _announce_when_up(url: str, banner: str, stopped: threading.Event) -> None:
    """Print the banner once the API answers /healthz."""
    while not stopped.wait(0.2):
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1.0):
                print(banner, flush=True)
                return
        except OSError:  # not listening yet (URLError), or an error status (HTTPError)
            continue
