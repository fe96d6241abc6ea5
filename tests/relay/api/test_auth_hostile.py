"""Hostile `Authorization` headers, bodies sent before a token is shown, guessing tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from relay.api.app import create_app
from relay.cli.embedded_redis import free_port
from relay.settings import Settings
from relay.store import keys, tokens
from relay.store.client import Redis
from relay.store.tokens import Role

EVENT: dict[str, Any] = {
    "id": 1,
    "type": "feature-created",
    "createdBy": "a@b.c",
    "createdAt": "2024-05-01T10:00:00.000Z",
    "data": {"name": "f"},
    "featureName": "f",
    "project": "default",
}
SUBSCRIPTION = {"name": "s", "config": {"url": "https://example.com/hook"}, "statements": []}

# (method, path, body): a route of each kind of auth (the ingest short path, the FastAPI
# ingest dependency, a reader and a writer route)
ROUTES = [
    ("POST", "/api/events", json.dumps(EVENT).encode()),
    ("POST", "/api/client/metrics", b"{}"),
    ("GET", "/api/admin/events", b""),
    ("POST", "/api/v2/integrations/webhook", json.dumps(SUBSCRIPTION).encode()),
]
ROUTE_IDS = ["ingest", "client-metrics", "read", "write"]


def _assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def _send(client: TestClient, method: str, path: str, body: bytes, authorization: Any) -> Any:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return client.request(method, path, content=body or None, headers=headers)


# --- the header itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        "tökén".encode("latin-1"),
        "tökén".encode(),
        b"Bearer \xff\xfe",
        b"rly_\x80abc",
        b"Bearer tok en",
    ],
    ids=["latin-1", "utf-8", "bearer-bytes", "high-byte", "inner-space"],
)
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_malformed_token_is_401(
    app_client: TestClient, method: str, path: str, body: bytes, authorization: bytes
) -> None:
    """A token with bytes no token has (non-ASCII, latin-1, spaces): 401, never a 500."""
    response = _send(app_client, method, path, body, authorization)
    _assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("authorization", ["Bearer ", "Bearer", "bearer    ", "   "])
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_empty_bearer_is_401(
    app_client: TestClient, method: str, path: str, body: bytes, authorization: str
) -> None:
    """`Bearer` with no token after it is a missing token, not the token `Bearer`."""
    response = _send(app_client, method, path, body, authorization)
    message = _assert_error(response, 401, "unauthorized")["message"]
    assert "missing" in message


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_very_long_token_is_401(
    app_client: TestClient, method: str, path: str, body: bytes
) -> None:
    """A 100 KB token is refused as malformed without hashing or looking it up."""
    response = _send(app_client, method, path, body, "rly_" + "x" * 100_000)
    message = _assert_error(response, 401, "unauthorized")["message"]
    assert "malformed" in message


def test_bootstrap_token_still_works_as_bearer(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """The checks leave good tokens alone: the admin token, bare or as a Bearer token."""
    bare = app_client.get("/api/v2/tokens", headers=admin_headers)
    bearer = app_client.get(
        "/api/v2/tokens", headers={"Authorization": f"Bearer {admin_headers['Authorization']}"}
    )
    assert (bare.status_code, bearer.status_code) == (200, 200)


# --- the admin token setting ----------------------------------------------------------------


@pytest.mark.parametrize(
    "token", ["tökén", "", "   ", "two words", "tab\there", "x" * 1025], ids=repr
)
def test_admin_token_setting_must_be_printable_ascii(token: str) -> None:
    """RELAY_ADMIN_TOKEN: printable ASCII without spaces, 1 to 1024 characters."""
    with pytest.raises(ValidationError) as raised:
        Settings(admin_token=token)
    assert "admin_token" in str(raised.value)


def test_admin_token_setting_accepts_a_generated_secret() -> None:
    """A secret like the ones relay generates is accepted as it is."""
    secret = tokens.generate_secret()
    assert Settings(admin_token=secret).admin_token == secret


def _env_without_relay() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}


@pytest.mark.parametrize("command", ["serve", "up"])
def test_cli_refuses_a_non_ascii_admin_token(command: str, redis_url: str, tmp_path: Path) -> None:
    """`relay serve`/`relay up` with a non-ASCII RELAY_ADMIN_TOKEN exit 2 with a clear message."""
    # given
    env = {
        **_env_without_relay(),
        "RELAY_ADMIN_TOKEN": "sécret-token",
        "RELAY_REDIS_URL": redis_url,
        "RELAY_DATA_DIR": str(tmp_path / "data"),
    }
    # when
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", command, "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then
    assert done.returncode == 2, done.stderr
    assert "RELAY_ADMIN_TOKEN" in done.stderr
    assert "ASCII" in done.stderr
    assert "Traceback" not in done.stderr
    assert "sécret" not in done.stderr  # a secret is not echoed into logs


@pytest.mark.parametrize("kept", ["sécret".encode(), b"\xff\xfe-not-utf8", b"two words"])
def test_up_refuses_a_bad_admin_token_file(kept: bytes, tmp_path: Path) -> None:
    """`relay up` with an edited admin-token file it cannot use: exit 2 naming the file."""
    # given
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin-token").write_bytes(kept + b"\n")
    env = {**_env_without_relay(), "RELAY_DATA_DIR": str(data)}
    # when
    done = subprocess.run(
        [sys.executable, "-m", "relay.cli", "up", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then
    assert done.returncode == 2, done.stderr
    assert "admin-token" in done.stderr and "ASCII" in done.stderr
    assert "Traceback" not in done.stderr


# --- no body is read for a caller without a valid token -----------------------------------


@pytest.fixture
def small_body_client(settings: Settings, redis_client: Redis) -> Iterator[TestClient]:
    """The API with a 1 KiB body limit."""
    small = settings.model_copy(update={"max_body_bytes": 1024})
    with TestClient(create_app(small, redis=redis_client)) as client:
        yield client


BODY_ROUTES = [route for route in ROUTES if route[0] == "POST"]
BODY_IDS = [name for name, route in zip(ROUTE_IDS, ROUTES, strict=True) if route[0] == "POST"]


@pytest.mark.parametrize("authorization", [None, "rly_junk"], ids=["no-token", "junk-token"])
@pytest.mark.parametrize(("method", "path", "body"), BODY_ROUTES, ids=BODY_IDS)
def test_big_body_without_a_valid_token_is_401_not_413(
    small_body_client: TestClient,
    method: str,
    path: str,
    body: bytes,
    authorization: str | None,
) -> None:
    """A body over the limit from someone without a valid token: 401, the body never read."""
    response = _send(small_body_client, method, path, b" " * 4096 + body, authorization)
    _assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize(("method", "path", "body"), BODY_ROUTES, ids=BODY_IDS)
def test_malformed_body_with_a_junk_token_is_401_not_400(
    app_client: TestClient, method: str, path: str, body: bytes
) -> None:
    """A body that is not JSON, with a junk token: 401 (the body is not parsed for strangers)."""
    response = _send(app_client, method, path, b"{not json", "rly_junk")
    _assert_error(response, 401, "unauthorized")


def test_big_body_from_a_role_without_the_right_is_403(
    small_body_client: TestClient, redis_client: Redis
) -> None:
    """A valid token whose role may not call the route: 403 before its body is read."""
    _, secret = tokens.create_token(redis_client, name="r", role=Role.READER)
    body = b" " * 4096 + json.dumps(SUBSCRIPTION).encode()
    response = _send(small_body_client, "POST", "/api/v2/integrations/webhook", body, secret)
    _assert_error(response, 403, "forbidden")


def test_big_body_with_a_good_token_is_still_413(
    small_body_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """The body limit still applies to callers with a valid token."""
    body = b" " * 4096 + json.dumps(SUBSCRIPTION).encode()
    response = _send(
        small_body_client,
        "POST",
        "/api/v2/integrations/webhook",
        body,
        admin_headers["Authorization"],
    )
    _assert_error(response, 413, "payload_too_large")


def test_revoked_ingest_token_is_refused_on_the_short_path(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """The ingest pre-check caches good tokens briefly; the record script still refuses a
    revoked one at once."""
    # given: a token that has posted (and so is cached), then is revoked over the API
    created = app_client.post(
        "/api/v2/tokens", json={"name": "i", "role": "ingest"}, headers=admin_headers
    ).json()
    headers = {"Authorization": created["token"], "content-type": "application/json"}
    first = app_client.post("/api/events", content=json.dumps(EVENT), headers=headers)
    assert first.status_code == 202, first.text
    gone = app_client.delete(f"/api/v2/tokens/{created['_id']}", headers=admin_headers)
    assert gone.status_code == 204
    # when
    again = app_client.post("/api/events", content=json.dumps({**EVENT, "id": 2}), headers=headers)
    # then
    _assert_error(again, 401, "unauthorized")


# --- failed authentication is throttled per client address --------------------------------


@pytest.fixture
def guarded(settings: Settings, redis_client: Redis) -> Iterator[Any]:
    """An app allowing 3 failed authentications per address per minute, and a client maker."""
    strict = Settings(
        **{**settings.model_dump(), "auth_failure_limit": 3, "auth_failure_window": 60}
    )
    app = create_app(strict, redis=redis_client)
    made: list[TestClient] = []

    def client(address: str = "203.0.113.7") -> TestClient:
        made.append(TestClient(app, client=(address, 40000)))
        return made[-1]

    with TestClient(app):  # the app's lifespan (its runtime) while the clients are used
        yield client
        for each in made:
            each.close()


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_repeated_bad_tokens_are_throttled_per_address(
    guarded: Any,
    admin_headers: dict[str, str],
    redis_client: Redis,
    method: str,
    path: str,
    body: bytes,
) -> None:
    """After 3 failed authentications the address gets 429 with Retry-After for any unknown
    token and for the bootstrap admin token (a right guess of it looks like a wrong one);
    a stored token still works from there, and other addresses are not affected."""
    # given
    attacker, bystander = guarded("203.0.113.7"), guarded("198.51.100.9")
    _, stored = tokens.create_token(redis_client, name="behind-the-same-nat", role=Role.ADMIN)
    # when
    guesses = [_send(attacker, method, path, body, f"rly_guess{n}") for n in range(4)]
    bootstrap = _send(attacker, method, path, body, admin_headers["Authorization"])
    malformed = _send(attacker, method, path, body, "not a token")
    good = _send(attacker, method, path, body, f"Bearer {stored}")
    other = _send(bystander, "GET", "/api/v2/tokens", b"", admin_headers["Authorization"])
    # then
    assert [g.status_code for g in guesses] == [401, 401, 401, 429]
    for limited in (guesses[3], bootstrap, malformed):
        _assert_error(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert good.status_code not in (401, 403, 429), good.text  # past auth: the route's answer
    assert other.status_code == 200, other.text


def test_a_stored_token_keeps_working_from_a_blocked_address(
    guarded: Any, redis_client: Redis
) -> None:
    """A stored token's requests from a blocked address are answered, one after another."""
    # given: an address blocked by 3 guesses
    attacker = guarded("203.0.113.7")
    _, stored = tokens.create_token(redis_client, name="reader", role=Role.READER)
    for n in range(3):
        assert _send(attacker, "GET", "/api/admin/events", b"", f"rly_g{n}").status_code == 401
    # when
    answers = [_send(attacker, "GET", "/api/admin/events", b"", stored) for _ in range(5)]
    # then
    assert {a.status_code for a in answers} == {200}


def test_throttle_is_shared_through_redis(
    guarded: Any, redis_client: Redis, settings: Settings
) -> None:
    """Failures counted by one API process count for the others (the counter is in Redis)."""
    # given: two failures seen by one app, one by another app on the same Redis
    attacker = guarded("203.0.113.7")
    for n in range(2):
        assert _send(attacker, "GET", "/api/admin/events", b"", f"rly_g{n}").status_code == 401
    strict = Settings(
        **{**settings.model_dump(), "auth_failure_limit": 3, "auth_failure_window": 60}
    )
    with TestClient(create_app(strict, redis=redis_client), client=("203.0.113.7", 1)) as other:
        # when
        third = _send(other, "GET", "/api/admin/events", b"", "rly_g3")
        fourth = _send(other, "GET", "/api/admin/events", b"", "rly_g4")
    # then
    assert (third.status_code, fourth.status_code) == (401, 429)
    assert any(key.startswith(keys.PREFIX) for key in redis_client.keys("*auth*"))


def test_missing_token_is_not_counted_as_a_failure(guarded: Any) -> None:
    """Requests without any token (a misconfigured client) get 401 but are not throttled."""
    client = guarded()
    answers = [_send(client, "GET", "/api/admin/events", b"", None) for _ in range(6)]
    assert {a.status_code for a in answers} == {401}


def test_failure_throttle_can_be_turned_off(settings: Settings, redis_client: Redis) -> None:
    """RELAY_AUTH_FAILURE_LIMIT=0: no throttle."""
    off = Settings(**{**settings.model_dump(), "auth_failure_limit": 0})
    with TestClient(create_app(off, redis=redis_client)) as client:
        answers = [_send(client, "GET", "/api/admin/events", b"", "rly_x") for _ in range(30)]
    assert {a.status_code for a in answers} == {401}
