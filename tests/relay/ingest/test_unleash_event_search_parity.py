"""Unleash 8.2's event search and the relay's, over the same events: the same answers.

How Unleash runs here: `npm install unleash-server@8.2.0` into a cache directory
($RELAY_UNLEASH_DIR, default ~/.cache/relay-unleash-8.2.0; the first run downloads about
100 MB from the npm registry, later runs reuse it), then
`node node_modules/unleash-server/dist/server.js` with
DATABASE_URL=postgres://postgres@127.0.0.1:5432/<a database made for this run>,
DATABASE_SSL=false, HTTP_HOST=127.0.0.1, HTTP_PORT=<a free port>, UNLEASH_URL=<its URL>,
INIT_ADMIN_API_TOKENS=<an admin token>, CHECK_VERSION=false, SEND_TELEMETRY=false, TZ=UTC.
The database is created with `psql` before and dropped after.

It needs node 20 or later (Unleash 8.2 asks for 22 and runs on 20), npm, and a PostgreSQL
server on 127.0.0.1:5432 that lets `postgres` in without a password (trust), with its
`psql` client; it is skipped, saying which is missing, without them (failed instead when
the environment variable CI is set, as .ci/run sets it).

Unleash makes its own events (flags, strategies, tags, segments, a user acting for
itself), the relay records them as Unleash's webhook sends them, and each search is asked
of both: the same events (Unleash's id is the relay's `producerId`), in the same order,
with the same labels and summaries, and the same total.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.settings import Settings
from relay.store.client import Redis

pytestmark = pytest.mark.slow

VERSION = "8.2.0"
CACHE = Path(os.environ.get("RELAY_UNLEASH_DIR", Path.home() / ".cache/relay-unleash-8.2.0"))
SEARCH = "/api/admin/search/events"
ADMIN = f"*:*.parity-{secrets.token_hex(8)}"


def _missing_tools() -> str | None:
    for tool in ("node", "npm", "psql"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    if int(version.strip().lstrip("v").split(".")[0]) < 20:
        return f"node {version.strip()} is older than 20"
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        return "no PostgreSQL on 127.0.0.1:5432"
    return None


def _psql(sql: str) -> None:
    command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def _install() -> Path:
    """unleash-server in the cache directory, installed once (pytest-xdist workers take turns)."""
    server = CACHE / "node_modules/unleash-server/dist/server.js"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not server.exists():
            if not (CACHE / "package.json").exists():
                (CACHE / "package.json").write_text('{"name": "relay-unleash", "private": true}\n')
            command = ["npm", "install", "--no-audit", "--no-fund", f"unleash-server@{VERSION}"]
            subprocess.run(command, cwd=CACHE, check=True, capture_output=True, timeout=900)
    return server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def unleash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh Unleash 8.2 on a database of its own; its base URL."""
    missing = _missing_tools()
    if missing:
        reason = f"Unleash parity needs node, npm and PostgreSQL: {missing}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set: the parity tests must run)")
        pytest.skip(reason)
    server = _install()
    database = f"relay_parity_{secrets.token_hex(6)}"
    _psql(f"CREATE DATABASE {database}")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "DATABASE_SSL": "false",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "UNLEASH_URL": url,
        "INIT_ADMIN_API_TOKENS": ADMIN,
        "CHECK_VERSION": "false",
        "SEND_TELEMETRY": "false",
        "LOG_LEVEL": "error",
        "TZ": "UTC",
    }
    log = tmp_path_factory.mktemp("unleash") / "unleash.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["node", str(server)], cwd=CACHE, env=env, stdout=output, stderr=output
        )
    try:
        _wait_until_up(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
        _psql(f"DROP DATABASE IF EXISTS {database}")


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180  # migrations of a fresh database, on a busy machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Unleash exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                headers = {"Authorization": ADMIN}
                if httpx.get(f"{url}{SEARCH}", headers=headers, timeout=5).status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"Unleash did not start in 180 s: {log.read_text()[-2000:]}")


def _act(unleash: str) -> None:
    """What an Unleash user does in a morning: flags, strategies, tags, segments, a user."""
    admin = httpx.Client(base_url=unleash, headers={"Authorization": ADMIN}, timeout=30)
    flags = "/api/admin/projects/default/features"
    strategies = f"{flags}/checkout.v2/environments/development/strategies"
    rollout = {"rollout": "50", "stickiness": "default", "groupId": "checkout.v2"}
    in_ab = [{"contextName": "userId", "operator": "IN", "values": ["a", "b"]}]
    steps: list[tuple[str, str, Any]] = [
        (
            "POST",
            flags,
            {"name": "checkout.v2", "description": "École checkout", "type": "release"},
        ),
        ("POST", flags, {"name": "search.ranking", "description": "50% \\ off_now"}),
        (
            "POST",
            strategies,
            {"name": "flexibleRollout", "parameters": rollout, "constraints": in_ab},
        ),
        ("POST", f"{flags}/checkout.v2/environments/development/on", None),
        ("POST", "/api/admin/features/checkout.v2/tags", {"type": "simple", "value": "team-a"}),
        ("POST", "/api/admin/segments", {"name": "beta users", "constraints": in_ab}),
        ("POST", "/api/admin/context", {"name": "tenant", "legalValues": [{"value": "acme"}]}),
        ("PUT", f"{flags}/checkout.v2", {"name": "checkout.v2", "description": "new desc"}),
        (
            "POST",
            "/api/admin/projects/default/stale",
            {"features": ["search.ranking"], "stale": True},
        ),
        ("DELETE", "/api/admin/features/checkout.v2/tags/simple/team-a", None),
        (
            "POST",
            "/api/admin/api-tokens",
            {"tokenName": "sdk", "type": "client", "projects": ["*"], "environment": "development"},
        ),
        (
            "POST",
            "/api/admin/user-admin",
            {"email": "dev@example.com", "name": "Dev", "rootRole": 2, "sendEmail": False},
        ),
    ]
    for method, path, body in steps:
        response = admin.request(method, path, json=body)
        assert response.status_code < 300, (method, path, response.text)
    # the strategy changes, then goes; a flag goes to the archive and comes back
    [strategy] = admin.get(strategies).json()
    changed = {"rollout": "100", "stickiness": "userId", "groupId": "checkout.v2"}
    body = {"name": "flexibleRollout", "parameters": changed, "constraints": [], "segments": []}
    for method, path, payload in [
        ("PUT", f"{strategies}/{strategy['id']}", body),
        ("POST", f"{flags}/checkout.v2/environments/development/off", None),
        ("DELETE", f"{strategies}/{strategy['id']}", None),
        ("DELETE", f"{flags}/search.ranking", None),
        ("POST", "/api/admin/projects/default/revive", {"features": ["search.ranking"]}),
    ]:
        response = admin.request(method, path, json=payload)
        assert response.status_code < 300, (method, path, response.text)
    # a person, signed in: events with their own user id
    person = httpx.Client(base_url=unleash, timeout=30)
    login = {"username": "admin", "password": "unleash4all"}
    assert person.post("/auth/simple/login", json=login).status_code == 200
    assert person.post(flags, json={"name": "made.by.hand", "type": "experiment"}).is_success


@pytest.fixture(scope="module")
def history(unleash: str) -> list[dict[str, Any]]:
    """Every event of that Unleash, oldest first, as its webhook would send them."""
    _act(unleash)
    headers = {"Authorization": ADMIN}
    found = httpx.get(f"{unleash}{SEARCH}?limit=1000", headers=headers, timeout=30).json()
    events = [
        {k: v for k, v in event.items() if k not in ("label", "summary")}
        for event in reversed(found["events"])
    ]
    assert len(events) == found["total"] > 20
    return events


@pytest.fixture
def relay(
    unleash: str,
    history: list[dict[str, Any]],
    settings: Settings,
    redis_client: Redis,
    admin_headers: dict[str, str],
) -> Iterator[tuple[TestClient, dict[int, int]]]:
    """The relay with Unleash's events recorded, its pull source being that Unleash (so the
    summaries link to it); and Unleash's id -> relay id."""
    configured = settings.model_copy(update={"unleash_url": unleash, "unleash_token": ADMIN})
    with TestClient(create_app(configured, redis=redis_client), headers=admin_headers) as client:
        response = client.post("/api/events?source=unleash", json=history)
        assert response.status_code == 202, response.text
        ids = dict(zip((e["id"] for e in history), response.json()["ids"], strict=True))
        yield client, ids


def _as_unleash(event: dict[str, Any]) -> dict[str, Any]:
    """A relay search event as Unleash answers it: Unleash's id, no relay fields."""
    shown = {k: v for k, v in event.items() if k not in ("producerId", "source")}
    shown["id"] = event["producerId"]
    return shown


def _days(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


QUERIES: list[dict[str, str]] = [
    {},
    {"limit": "5"},
    {"offset": "3", "limit": "4"},
    {"offset": "500"},
    {"limit": "1000"},
    {"type": "IS:feature-created"},
    {"type": "IS_ANY_OF:feature-created,feature-tagged, feature-untagged"},
    {"type": "IS:feature-created,feature-archived"},
    {"type": "IS:no-such-type"},
    {"feature": "IS:checkout.v2"},
    {"feature": "IS_ANY_OF:checkout.v2,made.by.hand"},
    {"project": "IS:default"},
    {"project": "IS:*"},
    {"project": "IS_ANY_OF:default,*"},
    {"environment": "IS:development"},
    {"environment": "IS:production"},
    {"createdBy": "IS:-42"},
    {"createdBy": "IS:1"},
    {"createdBy": "IS_ANY_OF:-1337,1"},
    {"from": "IS:{today}"},
    {"from": "IS:{yesterday}", "to": "IS:{today}"},
    {"to": "IS:{yesterday}"},
    {"from": "IS:{tomorrow}"},
    {"query": "école"},
    {"query": "ÉCOLE"},
    {"query": "team-a"},
    {"query": "admin"},
    {"query": "userId"},
    {"query": '"rollout":"50"'},
    {"query": '"rollout": "50"'},
    {"query": "flexible_ollout"},
    {"query": "50%"},
    {"query": "50\\%"},
    {"query": "\\\\"},
    {"query": "\\"},
    {"query": "%"},
    {"query": "_"},
    {"query": "null"},
    {"query": "[]"},
    {"query": "beta users"},
    {"query": "new desc"},
    {"type": "IS:feature-strategy-update", "query": "userId"},
    {"feature": "IS:checkout.v2", "environment": "IS:development", "limit": "3", "offset": "1"},
    {"project": "IS:default", "createdBy": "IS:-42", "from": "IS:{today}", "query": "check"},
]


@pytest.mark.parametrize("params", QUERIES, ids=[str(q) for q in QUERIES])
def test_the_relay_answers_each_search_as_unleash_does(
    unleash: str, relay: tuple[TestClient, dict[int, int]], params: dict[str, str]
) -> None:
    """Same events in the same order (Unleash's id = producerId), labels, summaries, total."""
    client, _ = relay
    days = {"today": _days(0), "yesterday": _days(-1), "tomorrow": _days(1)}
    asked = {name: value.format(**days) for name, value in params.items()}
    theirs = httpx.get(
        f"{unleash}{SEARCH}", params=asked, headers={"Authorization": ADMIN}, timeout=30
    ).json()
    ours = client.get(SEARCH, params=asked)
    assert ours.status_code == 200, ours.text
    assert [_as_unleash(e) for e in ours.json()["events"]] == theirs["events"]
    assert ours.json()["total"] == theirs["total"]
    assert ours.json()["complete"] is True


def test_relay_ids_and_group_ids_filter_as_unleash_ids_do(
    unleash: str, relay: tuple[TestClient, dict[int, int]], history: list[dict[str, Any]]
) -> None:
    """`id` names each one's own ids; a transaction's groupId its events in both."""
    client, ids = relay
    picked = [history[3]["id"], history[-1]["id"], history[len(history) // 2]["id"]]
    group = next(e["groupId"] for e in reversed(history) if e.get("groupId"))
    headers = {"Authorization": ADMIN}
    for theirs_params, ours_params in [
        (
            {"id": f"IS_ANY_OF:{','.join(map(str, picked))}"},
            {"id": f"IS_ANY_OF:{','.join(str(ids[i]) for i in picked)}"},
        ),
        ({"groupId": f"IS:{group}"}, {"groupId": f"IS:{group}"}),
    ]:
        theirs = httpx.get(f"{unleash}{SEARCH}", params=theirs_params, headers=headers).json()
        ours = client.get(SEARCH, params=ours_params).json()
        assert [_as_unleash(e) for e in ours["events"]] == theirs["events"]
        assert ours["total"] == theirs["total"] > 0


@pytest.mark.parametrize(
    ("params", "unleash_status"),
    [
        ({"limit": "1001"}, 200),  # Unleash answers its default 50 instead
        ({"limit": "0"}, 200),
        ({"offset": "x"}, 200),  # Unleash reads it as 0
        ({"type": "IS:"}, 200),  # Unleash drops the filter
        ({"id": "IS:abc"}, 500),  # Unleash's database refuses the value
        ({"createdBy": "IS:admin"}, 500),
        ({"from": "IS:2026-13-45"}, 500),
    ],
)
def test_where_the_relay_refuses_what_unleash_lets_through(
    unleash: str,
    relay: tuple[TestClient, dict[int, int]],
    params: dict[str, str],
    unleash_status: int,
) -> None:
    """The relay's deliberate differences: a 400 naming the parameter (docs/ingest.md)."""
    client, _ = relay
    theirs = httpx.get(f"{unleash}{SEARCH}", params=params, headers={"Authorization": ADMIN})
    ours = client.get(SEARCH, params=params)
    assert theirs.status_code == unleash_status
    assert ours.status_code == 400
    assert ours.json()["errors"][0]["attribute"] == next(iter(params))
