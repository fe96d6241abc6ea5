"""Attacks on the console's session cookie: cross-site requests, stolen or stale CSRF
tokens, ended and forged sessions, roles, leaks, oversized cookies."""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from relay.store import subscriptions, tokens
from relay.store.client import Redis
from relay.store.tokens import Role
from tests.support import SUBSCRIPTIONS, subscribe

COOKIE = "relay_console"
CSRF = "X-CSRF-Token"


@dataclass(frozen=True)
class Signed:
    """A signed-in browser: its cookie's value and the CSRF token the page was given."""

    session_id: str
    csrf: str

    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.session_id}"}

    def with_csrf(self) -> dict[str, str]:
        return {**self.cookie(), CSRF: self.csrf}


def sign_in(api: TestClient, secret: str) -> Signed:
    """POST /console/session with `secret`; the client's cookie jar is left empty, so that
    each request below says which cookie it sends."""
    response = api.post("/console/session", json={"token": secret})
    assert response.status_code == 200, response.text
    session_id = response.cookies[COOKIE]
    api.cookies.clear()
    return Signed(session_id, response.json()["csrfToken"])


def token(client: Redis, role: Role) -> str:
    _, secret = tokens.create_token(client, name=role.value, role=role)
    return secret


def _assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["message"]
    return body


NEW_SUBSCRIPTION = {"name": "planted", "config": {"url": "https://example.com/hook"}}


# --- cross-site requests -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"name=planted&config=x"),
        ("text/plain", json.dumps(NEW_SUBSCRIPTION).encode()),
        ("application/json", json.dumps(NEW_SUBSCRIPTION).encode()),
    ],
    ids=["form", "text-plain-json", "json"],
)
def test_a_cross_site_post_without_the_csrf_header_is_403_and_changes_nothing(
    app_client: TestClient, redis_client: Redis, content_type: str, body: bytes
) -> None:
    """Another site's form (or fetch) makes the browser send the cookie but cannot add the
    CSRF header: 403 before the body is read, and no subscription is created."""
    # given
    writer = sign_in(app_client, token(redis_client, Role.WRITER))
    # when
    response = app_client.post(
        SUBSCRIPTIONS, content=body, headers={**writer.cookie(), "Content-Type": content_type}
    )
    # then
    body_ = _assert_error(response, 403, "forbidden")
    assert body_["message"] == "missing or wrong CSRF token"
    assert subscriptions.list_subscriptions(redis_client) == []


def test_every_unsafe_method_needs_the_csrf_header(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """PATCH, DELETE and bodiless POSTs (retry, test send, token revocation) too: 403 and
    nothing changed."""
    # given
    sub_id = subscribe(redis_client, name="kept")
    admin = sign_in(app_client, admin_headers["Authorization"])
    victim, _ = tokens.create_token(redis_client, name="victim", role=Role.READER)
    patch = [{"op": "replace", "path": "/name", "value": "renamed"}]
    # when
    answers = [
        app_client.patch(f"{SUBSCRIPTIONS}/{sub_id}", json=patch, headers=admin.cookie()),
        app_client.delete(f"{SUBSCRIPTIONS}/{sub_id}", headers=admin.cookie()),
        app_client.post(f"{SUBSCRIPTIONS}/{sub_id}/test", headers=admin.cookie()),
        app_client.post(f"{SUBSCRIPTIONS}/{sub_id}/deliveries/d1/retry", headers=admin.cookie()),
        app_client.delete(f"/api/v2/tokens/{victim.id}", headers=admin.cookie()),
        app_client.post(
            "/api/v2/tokens", json={"name": "x", "role": "admin"}, headers=admin.cookie()
        ),
    ]
    # then
    for answer in answers:
        _assert_error(answer, 403, "forbidden")
    record = subscriptions.get_subscription(redis_client, sub_id=sub_id)
    assert record is not None and record.name == "kept"
    assert [t.name for t in tokens.list_tokens(redis_client)] == ["victim"]


@pytest.mark.parametrize("presented", ["wrong", "", "x" * 5000, "ß-not-ascii"])
def test_a_wrong_csrf_token_is_403(
    app_client: TestClient, redis_client: Redis, presented: str
) -> None:
    """Any value but the session's own is refused, whatever its length or bytes."""
    writer = sign_in(app_client, token(redis_client, Role.WRITER))
    headers = {**writer.cookie(), CSRF: presented}
    response = app_client.post(
        SUBSCRIPTIONS, json=NEW_SUBSCRIPTION, headers={k: v.encode() for k, v in headers.items()}
    )
    _assert_error(response, 403, "forbidden")
    assert subscriptions.list_subscriptions(redis_client) == []


def test_a_stale_csrf_token_is_403(app_client: TestClient, redis_client: Redis) -> None:
    """The CSRF token of another session (an earlier sign-in of the same token) does not
    work with this session's cookie."""
    secret = token(redis_client, Role.WRITER)
    earlier, later = sign_in(app_client, secret), sign_in(app_client, secret)
    headers = {**later.cookie(), CSRF: earlier.csrf}
    response = app_client.post(SUBSCRIPTIONS, json=NEW_SUBSCRIPTION, headers=headers)
    _assert_error(response, 403, "forbidden")


def test_the_csrf_token_lets_the_console_act(app_client: TestClient, redis_client: Redis) -> None:
    """With the session's CSRF token, a writer's cookie creates a subscription."""
    writer = sign_in(app_client, token(redis_client, Role.WRITER))
    response = app_client.post(SUBSCRIPTIONS, json=NEW_SUBSCRIPTION, headers=writer.with_csrf())
    assert response.status_code == 201, response.text
    assert [r.name for r in subscriptions.list_subscriptions(redis_client)] == ["planted"]


# --- sessions that ended, or that the server never made --------------------------------------


def test_the_cookie_of_a_deleted_session_is_401(
    app_client: TestClient, redis_client: Redis
) -> None:
    """After sign-out the cookie is worthless, even if the browser kept it."""
    reader = sign_in(app_client, token(redis_client, Role.READER))
    out = app_client.delete("/console/session", headers=reader.with_csrf())
    assert out.status_code == 204
    _assert_error(app_client.get(SUBSCRIPTIONS, headers=reader.cookie()), 401, "unauthorized")
    _assert_error(app_client.get("/console/session", headers=reader.cookie()), 401, "unauthorized")


def test_a_revoked_token_ends_its_sessions_at_the_next_request(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Revoking a token over the API ends every session signed in with it."""
    # given
    created = app_client.post(
        "/api/v2/tokens", json={"name": "r", "role": "reader"}, headers=admin_headers
    ).json()
    one, two = sign_in(app_client, created["token"]), sign_in(app_client, created["token"])
    assert app_client.get(SUBSCRIPTIONS, headers=one.cookie()).status_code == 200
    # when
    gone = app_client.delete(f"/api/v2/tokens/{created['_id']}", headers=admin_headers)
    assert gone.status_code == 204
    # then
    for session in (one, two):
        _assert_error(app_client.get(SUBSCRIPTIONS, headers=session.cookie()), 401, "unauthorized")
    assert redis_client.keys("relay:session:*") == []


@pytest.mark.parametrize(
    "forged",
    [
        "A" * 43,  # well formed, never issued
        "relay",
        "../../etc/passwd",
        "A" * 44,
        '"quoted"',
        "%00" * 20,
    ],
)
def test_a_cookie_the_server_did_not_issue_is_401(
    app_client: TestClient, redis_client: Redis, forged: str
) -> None:
    """Session fixation: a value the attacker chose is no session, on the API and on
    /console/session, and signing in does not adopt it."""
    # when
    api = app_client.get(SUBSCRIPTIONS, headers={"Cookie": f"{COOKIE}={forged}"})
    session = app_client.get("/console/session", headers={"Cookie": f"{COOKIE}={forged}"})
    signed = app_client.post(
        "/console/session",
        json={"token": token(redis_client, Role.READER)},
        headers={"Cookie": f"{COOKIE}={forged}"},
    )
    # then
    _assert_error(api, 401, "unauthorized")
    _assert_error(session, 401, "unauthorized")
    assert signed.status_code == 200
    assert signed.cookies[COOKIE] != forged
    again = app_client.get(SUBSCRIPTIONS, headers={"Cookie": f"{COOKIE}={forged}"})
    _assert_error(again, 401, "unauthorized")


def test_signing_in_again_ends_the_session_the_browser_had(
    app_client: TestClient, redis_client: Redis
) -> None:
    """A browser keeps one session: the old cookie stops working when it signs in again."""
    secret = token(redis_client, Role.READER)
    first = sign_in(app_client, secret)
    again = app_client.post("/console/session", json={"token": secret}, headers=first.cookie())
    assert again.status_code == 200
    _assert_error(app_client.get(SUBSCRIPTIONS, headers=first.cookie()), 401, "unauthorized")
    renewed = {"Cookie": f"{COOKIE}={again.cookies[COOKIE]}"}
    assert app_client.get(SUBSCRIPTIONS, headers=renewed).status_code == 200


# --- roles -----------------------------------------------------------------------------------


def test_a_reader_session_is_403_on_a_writer_route(
    app_client: TestClient, redis_client: Redis
) -> None:
    """The cookie acts with its token's role: a reader with the right CSRF token still may
    not write."""
    reader = sign_in(app_client, token(redis_client, Role.READER))
    response = app_client.post(SUBSCRIPTIONS, json=NEW_SUBSCRIPTION, headers=reader.with_csrf())
    assert "may not write" in _assert_error(response, 403, "forbidden")["message"]
    assert app_client.get(SUBSCRIPTIONS, headers=reader.cookie()).status_code == 200


def test_a_writer_session_may_not_manage_tokens(
    app_client: TestClient, redis_client: Redis
) -> None:
    """Token management stays with admins."""
    writer = sign_in(app_client, token(redis_client, Role.WRITER))
    _assert_error(app_client.get("/api/v2/tokens", headers=writer.cookie()), 403, "forbidden")


def test_an_ingest_token_cannot_sign_in(app_client: TestClient, redis_client: Redis) -> None:
    """An ingest token reads nothing: 403, no cookie."""
    response = app_client.post("/console/session", json={"token": token(redis_client, Role.INGEST)})
    _assert_error(response, 403, "forbidden")
    assert COOKIE not in response.cookies


def test_ingest_stays_header_only(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """POST /api/events and /api/client/metrics ignore the cookie: 401 without a header."""
    admin = sign_in(app_client, admin_headers["Authorization"])
    event = {"type": "feature-created", "createdBy": "a", "featureName": "f", "project": "p"}
    for path, body in (("/api/events", event), ("/api/client/metrics", {})):
        response = app_client.post(path, json=body, headers=admin.with_csrf())
        _assert_error(response, 401, "unauthorized")
    assert redis_client.keys("relay:event:*") == []


def test_the_cookie_is_for_the_api_only(app_client: TestClient, redis_client: Redis) -> None:
    """/metrics (outside /api/) takes a token header only."""
    reader = sign_in(app_client, token(redis_client, Role.READER))
    _assert_error(app_client.get("/metrics", headers=reader.cookie()), 401, "unauthorized")


# --- the Authorization header wins ----------------------------------------------------------


def test_an_authorization_header_wins_over_the_cookie(
    app_client: TestClient, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """With both, the header decides: its role applies, a bad header is 401 whatever the
    cookie, and a header needs no CSRF token."""
    admin = sign_in(app_client, admin_headers["Authorization"])
    reader, writer = token(redis_client, Role.READER), token(redis_client, Role.WRITER)
    as_reader = app_client.post(
        SUBSCRIPTIONS,
        json=NEW_SUBSCRIPTION,
        headers={**admin.with_csrf(), "Authorization": reader},
    )
    bad = app_client.get(SUBSCRIPTIONS, headers={**admin.cookie(), "Authorization": "rly_nope"})
    as_writer = app_client.post(
        SUBSCRIPTIONS, json=NEW_SUBSCRIPTION, headers={**admin.cookie(), "Authorization": writer}
    )
    _assert_error(as_reader, 403, "forbidden")
    _assert_error(bad, 401, "unauthorized")
    assert as_writer.status_code == 201, as_writer.text


# --- what the cookie must never reach --------------------------------------------------------


def test_the_session_id_never_appears_in_logs_bodies_or_redis(
    app_client: TestClient,
    redis_client: Redis,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Errors of every kind answered to a request with a session cookie neither echo nor log
    it; Redis keeps only its hash."""
    # given
    caplog.set_level(logging.DEBUG)
    admin = sign_in(app_client, admin_headers["Authorization"])
    # when
    answers = [
        app_client.post(SUBSCRIPTIONS, json=NEW_SUBSCRIPTION, headers=admin.cookie()),  # 403
        app_client.get(f"{SUBSCRIPTIONS}/nope", headers=admin.cookie()),  # 404
        app_client.get("/api/v2/deliveries?limit=0", headers=admin.cookie()),  # 400
        app_client.get("/api/nowhere", headers=admin.cookie()),  # no route
        app_client.get("/console/session", headers=admin.cookie()),  # 200
        app_client.post(SUBSCRIPTIONS, content=b"{", headers=admin.with_csrf()),  # bad JSON
    ]
    # then
    assert [a.status_code for a in answers] == [403, 404, 400, 404, 200, 400]
    for answer in answers:
        assert admin.session_id not in answer.text
        assert all(admin.session_id not in value for value in answer.headers.values())
    assert admin.session_id not in caplog.text
    for key in redis_client.keys("*"):
        assert admin.session_id not in key
        if redis_client.type(key) == "hash":
            assert admin.session_id not in json.dumps(redis_client.hgetall(key))


def test_a_huge_cookie_is_refused_without_a_500(
    app_client: TestClient, redis_client: Redis
) -> None:
    """A 20 KB cookie, and many cookies: 401, never a 500."""
    huge = app_client.get(SUBSCRIPTIONS, headers={"Cookie": f"{COOKIE}={'a' * 20_000}"})
    crowd = "; ".join(f"c{n}={'v' * 50}" for n in range(300)) + f"; {COOKIE}=x"
    many = app_client.get(SUBSCRIPTIONS, headers={"Cookie": crowd})
    _assert_error(huge, 401, "unauthorized")
    _assert_error(many, 401, "unauthorized")


def test_a_cookie_past_the_header_limit_is_refused_by_the_server(live_api: str) -> None:
    """Through the real server, a 40 KB cookie is refused: 431 from the server's header
    bound, or 401 from the session check when the whole header block came in one read
    (the bound counts the bytes of a block still incomplete), never a 500."""
    response = httpx.get(
        f"{live_api}{SUBSCRIPTIONS}", headers={"Cookie": f"{COOKIE}={'a' * 40_000}"}
    )
    assert response.status_code in (401, 431), response.text
    assert response.json()["code"] in ("unauthorized", "request_header_fields_too_large")


def test_a_raw_request_with_a_malformed_cookie_header_is_not_a_500(live_api: str) -> None:
    """Bytes no cookie has (latin-1, control characters, no `=`) in the Cookie header."""
    address = urlsplit(live_api)
    for cookie in (b"relay_console=\xff\xfe\x80", b"relay_console", b";;;=;=", b"a=\x01\x02"):
        with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
            conn.sendall(
                b"GET /api/v2/integrations/webhook HTTP/1.1\r\nHost: x\r\nCookie: "
                + cookie
                + b"\r\nConnection: close\r\n\r\n"
            )
            head = conn.recv(65536).split(b"\r\n", 1)[0]
        assert head.startswith(b"HTTP/1.1 4"), (cookie, head)
