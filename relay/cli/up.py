"""The whole relay on one machine: what `relay up` runs and supervises.

Redis (the embedded one unless `RELAY_REDIS_URL` is set), the API, a Celery worker and the
beat schedule, each its own process. The data directory holds the embedded Redis's data
and AOF, the generated admin token, the beat schedule, and while `relay up` runs, the
embedded Redis's URL with its password (so `relay token ...` in another terminal finds it).
It is private to this user (0700, files 0600: `relay up` runs with umask 077), and locked
by `relay up` and every process it starts until the last of them exits.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from relay.cli.embedded_redis import (
    DataDirInUseError,
    free_port,
    lock_data_dir,
    make_private,
    start_redis,
    write_private,
)
from relay.cli.supervisor import Child, Supervisor, spawn
from relay.errors import StoreError
from relay.settings import Settings, admin_token_problem
from relay.store.client import check_durability, open_redis
from relay.store.tokens import generate_secret

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin-token"
REDIS_URL_FILE = "redis.url"
BEAT_SCHEDULE_FILE = "celerybeat-schedule"
METRICS_DIR = "metrics"  # prometheus-client multiprocess files of the children
API_BACKLOG = 2048  # uvicorn's default backlog


class StackError(RuntimeError):
    """`relay up` cannot start (the port is taken, the data directory is in use)."""


@dataclass(frozen=True)
class AdminToken:
    secret: str
    file: Path | None  # None when it came from RELAY_ADMIN_TOKEN
    generated: bool = False  # made just now: the one time it is shown


def admin_token(data_dir: Path, given: str | None) -> AdminToken:
    """`given`, or the token kept in the data directory, or a new one kept there (mode 0600)."""
    if given:
        return AdminToken(given, None)
    path = data_dir / ADMIN_TOKEN_FILE
    kept = path.read_bytes().decode("utf-8", errors="replace").strip() if path.exists() else ""
    if kept:
        problem = admin_token_problem(kept)
        if problem:  # an edited file: say so rather than start children that refuse it
            raise StackError(f"the admin token in {path} {problem}; fix or delete the file")
        return AdminToken(kept, path)
    secret = generate_secret()
    path.unlink(missing_ok=True)
    # created with 0600 from the start: never readable by others, not even briefly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return AdminToken(secret, path, generated=True)


def child_commands(
    host: str, port: int, data_dir: Path, *, api_fd: int | None = None
) -> dict[str, list[str]]:
    """The API, worker and beat, each run by this Python as `python -m relay.cli ...`; the
    API on the listening socket `api_fd` when given (`relay up` holds it)."""
    relay = [sys.executable, "-m", "relay.cli"]
    listening = ["--fd", str(api_fd)] if api_fd is not None else []
    return {
        "api": [*relay, "serve", "--host", host, "--port", str(port), *listening],
        "worker": [*relay, "worker"],
        "beat": [*relay, "beat", "--schedule", str(data_dir / BEAT_SCHEDULE_FILE)],
    }


def child_environment(redis_url: str | None, token: str, data_dir: Path) -> dict[str, str]:
    """This process's environment plus what every child needs to find Redis and auth (no
    URL: the children read the sentinels from the same environment)."""
    return {
        **os.environ,
        **({"RELAY_REDIS_URL": redis_url} if redis_url else {}),
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
    with _exclusive(data_dir) as lock_fd, _api_socket(host, port) as api_socket:
        token = admin_token(data_dir, settings.admin_token)
        fresh_metrics_dir(data_dir)
        redis_children, redis_url = _redis(settings, data_dir, lock_fd)
        env = child_environment(redis_url, token.secret, data_dir)
        api_fd = api_socket.fileno()
        apps = [
            # each child holds the lock too: a second `relay up` waits for the last to exit
            Child(name, spawn(argv, env, pass_fds=[lock_fd, *([api_fd] if name == "api" else [])]))
            for name, argv in child_commands(host, port, data_dir, api_fd=api_fd).items()
        ]
        supervisor = Supervisor([*redis_children, *apps])
        stopped = threading.Event()
        banner = _banner(host, port, token, _redis_line(settings, redis_url, data_dir))
        threading.Thread(
            target=_announce_when_up, args=(base_url(host, port), banner, stopped), daemon=True
        ).start()
        try:
            supervisor.run()
        finally:
            stopped.set()
            (data_dir / REDIS_URL_FILE).unlink(missing_ok=True)
    log.info("relay stopped")


def _redis(settings: Settings, data_dir: Path, lock_fd: int) -> tuple[list[Child], str | None]:
    """The embedded Redis as a supervised child and its URL; none when RELAY_REDIS_URL or
    RELAY_REDIS_SENTINELS is given (the children find it in the same variables)."""
    if settings.has_redis:
        warn_if_not_durable(settings)
        return [], settings.redis_url
    port, password = free_port(), secrets.token_urlsafe(32)
    # a restart reuses the directory, port and password: Redis reloads its AOF, clients
    # reconnect with the URL they have
    child = Child(
        "redis",
        lambda: start_redis(data_dir, port=port, password=password, lock_fd=lock_fd).process,
        tier=0,
        grace=2.0,
    )
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    write_private(data_dir / REDIS_URL_FILE, url + "\n")
    return [child], url


def warn_if_not_durable(settings: Settings) -> None:
    """Log a warning when the settings' Redis can lose acknowledged data (AOF off, eviction)."""
    try:
        client = open_redis(settings)
        try:
            check_durability(client)  # logs each warning itself
        finally:
            client.close()
    except StoreError as exc:
        log.warning("could not check Redis durability settings: %s", exc)


@contextmanager
def _exclusive(data_dir: Path) -> Iterator[int]:
    """The data directory, private and locked (the lock's fd): two Redis servers on one AOF
    lose writes. Meanwhile what this process and its children create is this user's alone."""
    umask = os.umask(0o077)
    try:
        lock_fd = _lock(data_dir)
        try:
            make_private(data_dir)  # what an older relay left readable
            yield lock_fd
        finally:
            os.close(lock_fd)
    finally:
        os.umask(umask)


def _lock(data_dir: Path) -> int:
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return lock_data_dir(data_dir)
    except DataDirInUseError as exc:
        held_by = f" (pid {', '.join(map(str, exc.pids))})" if exc.pids else ""
        raise StackError(
            f"another `relay up` is using {data_dir}{held_by}; stop it, or wait for its "
            "processes to exit"
        ) from None
    except OSError as exc:
        raise StackError(f"cannot use {data_dir}: {exc.strerror}") from None


@contextmanager
def _api_socket(host: str, port: int) -> Iterator[socket.socket]:
    """The API's listening socket, bound here and held for as long as `relay up` runs: every
    API child (a restarted one too) serves on it, so no other process can take the port
    between two of them, nor answer the /healthz that prints the banner."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StackError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        sock.listen(API_BACKLOG)
        yield sock


def _banner(host: str, port: int, token: AdminToken, redis_line: str) -> str:
    url = base_url(host, port)
    return "\n".join(
        [
            "relay is up",
            f"  API          {url}  (docs: {url}/docs)",
            f"  console      {url}/console  (sign in with a token)",
            f"  admin token  {_shown_token(token)}",
            f"  Redis        {redis_line}",
            "  deliveries   run `relay listen` in another terminal to see them arrive",
            "Press Ctrl-C to stop.",
        ]
    )


def _redis_line(settings: Settings, redis_url: str | None, data_dir: Path) -> str:
    """Which Redis the children use, without its password."""
    if settings.redis_sentinels:
        sentinels = ", ".join(settings.redis_sentinels)
        return f"primary of {settings.redis_sentinel_master!r} via sentinels {sentinels}"
    assert redis_url is not None
    where = "RELAY_REDIS_URL" if settings.redis_url else f"embedded; data and AOF in {data_dir}"
    return f"{without_password(redis_url)}  ({where})"


def _shown_token(token: AdminToken) -> str:
    """The secret once, the start that made it; afterwards only where it is kept."""
    if token.file is None:  # the operator's own: no need to echo a secret
        return "set by RELAY_ADMIN_TOKEN"
    if token.generated:
        return f"{token.secret}  (new; kept in {token.file}, not shown again)"
    return f"in {token.file}"


def without_password(url: str) -> str:
    """`url` with its password (if any) replaced by `***`, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _announce_when_up(url: str, banner: str, stopped: threading.Event) -> None:
    """Print the banner once the API answers /healthz."""
    while not stopped.wait(0.2):
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1.0):
                print(banner, flush=True)
                return
        except OSError:  # not listening yet (URLError), or an error status (HTTPError)
            continue
