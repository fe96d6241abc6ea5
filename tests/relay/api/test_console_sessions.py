"""Signing in to the console: POST, GET and DELETE /console/session, the cookie's flags,
the failed-sign-in throttle, and how long and how many sessions last."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.settings import Settings
from relay.store import keys, tokens
from relay.store.client import Redis
from relay.store.tokens import Role
from tests.support import SUBSCRIPTIONS, serve_in_thread

COOKIE = "relay_console"
SESSION = "/console/session"


def _assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["message"]
    return body


def _set_cookie(response: Any) -> SimpleCookie:
    """The answer's Set-Cookie header, parsed (attributes included)."""
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    return jar


def token(client: Redis, role: Role, name: str = "console") -> str:
    _, secret = tokens.create_token(client, name=name, role=role)
    return secret


# --- signing in, asking who, signing out -----------------------------------------------------


def test_sign_in_answers_who_and_sets_a_strict_http_only_cookie(
    app_client: TestClient, redis_client: Redis
) -> None:
    """200 with name, role and a CSRF token; the cookie is HttpOnly, SameSite=Strict, Path=/,
    without Secure over plain HTTP, and its value is 32 random bytes, URL-safe."""
    response = app_client.post(SESSION, json={"token": token(redis_client, Role.WRITER, "ops")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"name", "role", "csrfToken"}
    assert (body["name"], body["role"]) == ("ops", "writer")
    assert len(body["csrfToken"]) >= 43
    morsel = _set_cookie(response)[COOKIE]
    assert len(morsel.value) == 43 and morsel.value.replace("-", "").replace("_", "").isalnum()
    assert morsel["httponly"] and morsel["path"] == "/"
    assert morsel["samesite"].lower() == "strict"
    assert not morsel["secure"]
    assert not morsel["max-age"] and not morsel["expires"]  # gone when the browser closes


def test_the_page_asks_who_is_signed_in(app_client: TestClient, redis_client: Redis) -> None:
    """GET /console/session: 200 with the same body while signed in, 401 without a cookie."""
    signed = app_client.post(SESSION, json={"token": token(redis_client, Role.READER, "dash")})
    now = app_client.get(SESSION)  # the client's jar sends the cookie
    assert now.status_code == 200 and now.json() == signed.json()
    app_client.cookies.clear()
    _assert_error(app_client.get(SESSION), 401, "unauthorized")


def test_a_signed_in_browser_reads_the_api_with_its_cookie(
    app_client: TestClient, redis_client: Redis
) -> None:
    """The cookie alone reads what the token may read."""
    app_client.post(SESSION, json={"token": token(redis_client, Role.READER)})
    assert app_client.get(SUBSCRIPTIONS).status_code == 200
    assert app_client.get("/api/v2/status").status_code == 200


def test_sign_out_ends_the_session_and_clears_the_cookie(
    app_client: TestClient, redis_client: Redis
) -> None:
    """DELETE with the CSRF token: 204, the session gone from Redis, the cookie expired."""
    csrf = app_client.post(SESSION, json={"token": token(redis_client, Role.READER)}).json()
    assert len(redis_client.keys("relay:session:*")) == 1
    out = app_client.delete(SESSION, headers={"X-CSRF-Token": csrf["csrfToken"]})
    assert out.status_code == 204
    morsel = _set_cookie(out)[COOKIE]
    assert morsel.value == "" and morsel["max-age"] == "0"
    assert morsel["httponly"] and morsel["samesite"].lower() == "strict"
    assert redis_client.keys("relay:session:*") == []
    assert redis_client.keys("relay:sessions:*") == []


def test_sign_out_without_the_csrf_token_is_403(
    app_client: TestClient, redis_client: Redis
) -> None:
    """Another site cannot sign the browser out: 403, and the session still works."""
    app_client.post(SESSION, json={"token": token(redis_client, Role.READER)})
    _assert_error(app_client.delete(SESSION), 403, "forbidden")
    assert app_client.get(SESSION).status_code == 200


def test_the_bootstrap_admin_token_signs_in_until_it_changes(
    settings: Settings, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """RELAY_ADMIN_TOKEN signs in as admin; once the setting changes, its sessions end."""
    # given
    with TestClient(create_app(settings, redis=redis_client)) as api:
        signed = api.post(SESSION, json={"token": admin_headers["Authorization"]})
        assert signed.json()["role"] == "admin"
        cookie = {"Cookie": f"{COOKIE}={signed.cookies[COOKIE]}"}
        api.cookies.clear()
        assert api.get("/api/v2/tokens", headers=cookie).status_code == 200
    rotated = settings.model_copy(update={"admin_token": "another-admin-token"})
    # when
    with TestClient(create_app(rotated, redis=redis_client)) as api:
        answer = api.get("/api/v2/tokens", headers=cookie)
    # then
    _assert_error(answer, 401, "unauthorized")


# --- what a sign-in body may be ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-www-form-urlencoded", b"token=rly_x", 415),
        ("text/plain", b'{"token": "rly_x"}', 415),
        ("", b'{"token": "rly_x"}', 415),
        ("application/json", b"{", 400),
        ("application/json", b'{"token": ""}', 400),
        ("application/json", b'{"token": 7}', 400),
        ("application/json", b'{"token": "rly_x", "role": "admin"}', 400),
        ("application/json", b"[]", 400),
        ("application/json", json.dumps({"token": "x" * 5000}).encode(), 413),
    ],
    ids=["form", "text", "none", "bad-json", "empty", "number", "extra", "list", "huge"],
)
def test_a_sign_in_body_is_json_with_a_token_only(
    app_client: TestClient, content_type: str, body: bytes, status: int
) -> None:
    """JSON only (a cross-site form cannot send it), `{"token": ...}` only, a few KB only;
    no cookie on any refusal."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = app_client.post(SESSION, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert set(response.json()) >= {"code", "message"}
    assert "set-cookie" not in response.headers


def test_a_chunked_sign_in_body_is_bounded_too(live_api: str) -> None:
    """A body without a length is counted as it arrives: 413 past the bound."""

    def chunks() -> Iterator[bytes]:
        yield b'{"token": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = httpx.post(
        f"{live_api}{SESSION}", content=chunks(), headers={"Content-Type": "application/json"}
    )
    _assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize("secret", ["rly_unknown", "tök", "x" * 2000, "two words"])
def test_a_bad_token_is_401_without_a_cookie(app_client: TestClient, secret: str) -> None:
    """Unknown, non-ASCII, too long or spaced: 401 in the seeds' shape."""
    response = app_client.post(SESSION, json={"token": secret})
    _assert_error(response, 401, "unauthorized")
    assert "set-cookie" not in response.headers
    assert secret not in response.text


# --- the failed-authentication throttle -------------------------------------------------------


@pytest.fixture
def guarded(settings: Settings, redis_client: Redis) -> Iterator[Callable[[str], TestClient]]:
    """An app allowing 3 failed authentications per address per minute, and a client maker."""
    strict = settings.model_copy(update={"auth_failure_limit": 3, "auth_failure_window": 60})
    app = create_app(strict, redis=redis_client)
    made: list[TestClient] = []

    def client(address: str) -> TestClient:
        made.append(TestClient(app, client=(address, 40000)))
        return made[-1]

    with TestClient(app):
        yield client
        for each in made:
            each.close()


def test_bad_sign_ins_are_counted_like_bad_headers(
    guarded: Callable[[str], TestClient], redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Two bad sign-ins and one bad header use up the address's 3 failures: then 429 with
    Retry-After, for the bootstrap token too; a stored token still signs in from there, and
    another address is untouched."""
    # given
    attacker, bystander = guarded("203.0.113.7"), guarded("198.51.100.9")
    stored = token(redis_client, Role.READER)
    # when
    first = [attacker.post(SESSION, json={"token": f"rly_guess{n}"}) for n in range(2)]
    header = attacker.get(SUBSCRIPTIONS, headers={"Authorization": "rly_guess2"})
    blocked = attacker.post(SESSION, json={"token": "rly_guess3"})
    bootstrap = attacker.post(SESSION, json={"token": admin_headers["Authorization"]})
    good = attacker.post(SESSION, json={"token": stored})
    other = bystander.post(SESSION, json={"token": admin_headers["Authorization"]})
    # then
    assert [r.status_code for r in [*first, header]] == [401, 401, 401]
    for limited in (blocked, bootstrap):
        _assert_error(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert "set-cookie" not in limited.headers
    assert good.status_code == 200, good.text
    assert other.status_code == 200, other.text


def test_an_ended_session_cookie_is_not_counted_as_a_failure(
    guarded: Callable[[str], TestClient],
) -> None:
    """A console polling with a cookie whose session ended gets 401s, never 429: a session
    id is not a guess."""
    browser = guarded("203.0.113.8")
    answers = [
        browser.get(SUBSCRIPTIONS, headers={"Cookie": f"{COOKIE}={'A' * 43}"}) for _ in range(6)
    ]
    assert {a.status_code for a in answers} == {401}


# --- how long, how many -----------------------------------------------------------------------


def test_a_session_is_kept_hashed_for_12_hours(app_client: TestClient, redis_client: Redis) -> None:
    """One key per session, named by a hash, expiring 12 h after sign-in."""
    response = app_client.post(SESSION, json={"token": token(redis_client, Role.READER)})
    [key] = redis_client.keys("relay:session:*")
    assert response.cookies[COOKIE] not in key
    assert 12 * 3600 - 60 <= redis_client.ttl(key) <= 12 * 3600
    [index] = redis_client.keys("relay:sessions:*")
    assert 12 * 3600 - 60 <= redis_client.ttl(index) <= 12 * 3600


def test_a_token_keeps_its_20_newest_sessions(app_client: TestClient, redis_client: Redis) -> None:
    """The 21st sign-in of a token ends its first session; the others still work."""
    secret = token(redis_client, Role.READER)
    cookies = []
    for _ in range(21):
        cookies.append(app_client.post(SESSION, json={"token": secret}).cookies[COOKIE])
        app_client.cookies.clear()
    answers = [app_client.get(SESSION, headers={"Cookie": f"{COOKIE}={c}"}) for c in cookies]
    assert [a.status_code for a in answers] == [401] + [200] * 20
    assert len(redis_client.keys("relay:session:*")) == 20
    tokens_sessions = redis_client.keys("relay:sessions:*")
    assert [redis_client.zcard(k) for k in tokens_sessions] == [20]


def test_sessions_of_other_tokens_are_not_dropped(
    app_client: TestClient, redis_client: Redis
) -> None:
    """The bound is per token: a busy token does not end another's session."""
    other = app_client.post(SESSION, json={"token": token(redis_client, Role.READER, "b")})
    kept = {"Cookie": f"{COOKIE}={other.cookies[COOKIE]}"}
    busy = token(redis_client, Role.READER, "a")
    for _ in range(25):
        app_client.cookies.clear()
        app_client.post(SESSION, json={"token": busy})
    app_client.cookies.clear()
    assert app_client.get(SESSION, headers=kept).status_code == 200
    assert len(redis_client.keys(keys.session("*"))) == 21


# --- Secure over HTTPS, as a trusted proxy says -------------------------------------------------


def test_the_cookie_is_secure_over_https(settings: Settings, redis_client: Redis) -> None:
    """A request that came over HTTPS gets a Secure cookie."""
    app = create_app(settings, redis=redis_client)
    with TestClient(app, base_url="https://relay.example") as api:
        response = api.post(SESSION, json={"token": token(redis_client, Role.READER)})
    assert _set_cookie(response)[COOKIE]["secure"]


def _forwarded_https_sign_in(settings: Settings, redis_client: Redis) -> Any:
    with serve_in_thread(create_app(settings, redis=redis_client), settings) as url:
        return httpx.post(
            f"{url}{SESSION}",
            json={"token": token(redis_client, Role.READER)},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
        )


def test_x_forwarded_proto_counts_only_from_a_trusted_proxy(
    settings: Settings, redis_client: Redis
) -> None:
    """X-Forwarded-Proto: https from a client the settings do not trust leaves the cookie
    without Secure; from RELAY_FORWARDED_ALLOW_IPS it makes it Secure."""
    untrusted = _forwarded_https_sign_in(settings, redis_client)
    trusted = _forwarded_https_sign_in(
        settings.model_copy(update={"forwarded_allow_ips": "127.0.0.1"}), redis_client
    )
    assert untrusted.status_code == trusted.status_code == 200
    assert not _set_cookie(untrusted)[COOKIE]["secure"]
    assert _set_cookie(trusted)[COOKIE]["secure"]


def test_the_session_routes_are_documented(app_client: TestClient) -> None:
    """/console/session's three operations are in /openapi.json with their body, answer and
    errors; the page and its files are not API and are left out."""
    paths = app_client.get("/openapi.json").json()["paths"]
    session = paths[SESSION]
    assert set(session) == {"get", "post", "delete"}
    sign_in = session["post"]
    body = sign_in["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["token"]
    assert {"200", "400", "401", "403", "413", "415", "429"} <= set(sign_in["responses"])
    answer = sign_in["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/SessionRep")
    assert {"204", "401", "403"} <= set(session["delete"]["responses"])
    assert not [path for path in paths if path.startswith("/console") and path != SESSION]
