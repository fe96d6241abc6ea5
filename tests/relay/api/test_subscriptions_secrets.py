"""Secrets of a subscription never reach someone who could not have set them.

Every custom header value is a credential: shown to no role in any answer, kept out of
recorded receiver answers, and never carried to a new destination origin unless the same
request gives it again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from relay.settings import Settings
from relay.store import deliveries, subscription_status, subscriptions, tokens
from relay.store.client import Redis
from relay.store.deliveries import Attempt, DeliveryKind, DeliveryState, Finish, NewDelivery
from relay.store.tokens import Role

BASE = "/api/v2/integrations/webhook"
SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="
BEARER = "Bearer supersecret-token-0123456789"
HEADERS = {"Authorization": BEARER, "X-Api-Key": "123456789", "X-Team": "platform-team"}
URL = "https://hooks.example.com/audit?team=ops&code=q1w2e3r4t5y6"
MASK = "********"


def _create(app_client: TestClient, caller: dict[str, str], **config: Any) -> dict[str, Any]:
    body = {
        "name": "audit",
        "config": {"url": URL, "secret": SECRET, "headers": HEADERS, **config},
        "statements": [{"effect": "allow", "resources": ["proj/*"], "actions": ["*"]}],
    }
    response = app_client.post(BASE, json=body, headers=caller)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _token(redis_client: Redis, role: Role) -> dict[str, str]:
    _, secret = tokens.create_token(redis_client, name=role.value, role=role)
    return {"Authorization": secret}


def _patch(
    app_client: TestClient, headers: dict[str, str], sub_id: str, patch: Any
) -> httpx.Response:
    return app_client.patch(f"{BASE}/{sub_id}", json=patch, headers=headers)


def _stored(redis_client: Redis, sub_id: str) -> subscriptions.SubscriptionRecord:
    record = subscriptions.get_subscription(redis_client, sub_id=sub_id)
    assert record is not None
    return record


def _leaks(text: str) -> list[str]:
    """Stored credentials found in `text`: whole, a word of one, or an end a partial mask kept."""
    values = [*HEADERS.values(), SECRET, "supersecret-token-0123456789", "q1w2e3r4t5y6"]
    pieces = {piece for v in values for piece in (v, f"{v[:4]}*", f"*{v[-4:]}")}
    return sorted(piece for piece in pieces if piece in text)


# --- masking -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.READER, Role.WRITER, Role.ADMIN])
def test_no_role_sees_a_header_value_secret_or_url_credential(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, role: Role
) -> None:
    """Every header value, the secret and URL query values are fully masked for every role."""
    # given
    created = _create(app_client, admin_headers)
    caller = _token(redis_client, role)
    # when
    one = app_client.get(f"{BASE}/{created['_id']}", headers=caller)
    listed = app_client.get(BASE, headers=caller)
    # then
    assert one.status_code == listed.status_code == 200
    config = one.json()["config"]
    assert config["headers"] == {name: MASK for name in HEADERS}
    assert config["secret"] == MASK
    assert config["url"] == f"https://hooks.example.com/audit?team={MASK}&code={MASK}"
    assert _leaks(one.text) == [] and _leaks(listed.text) == []
    assert _leaks(repr(created)) == []


def test_test_operation_cannot_probe_a_header_value(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """A `test` against a header's real value fails (409): the document holds only masks."""
    created = _create(app_client, admin_headers)
    response = _patch(
        app_client,
        admin_headers,
        created["_id"],
        [{"op": "test", "path": "/config/headers/X-Api-Key", "value": "123456789"}],
    )
    assert response.status_code == 409


def test_masked_config_written_back_keeps_every_stored_value(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """GET, edit the name, write the whole masked config back: secret, headers and URL are kept."""
    created = _create(app_client, admin_headers)
    shown = app_client.get(f"{BASE}/{created['_id']}", headers=admin_headers).json()["config"]
    response = _patch(
        app_client,
        admin_headers,
        created["_id"],
        [{"op": "replace", "path": "/config", "value": shown}],
    )
    assert response.status_code == 200, response.text
    stored = _stored(redis_client, created["_id"])
    assert stored.config["headers"] == HEADERS
    assert stored.config["url"] == URL and stored.config["secret"] == SECRET


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "move", "from": "/config/headers/Authorization", "path": "/config/headers/X-Leak"}],
        [{"op": "copy", "from": "/config/secret", "path": "/config/headers/X-Leak"}],
        [{"op": "add", "path": "/config/headers/X-Leak", "value": MASK}],
    ],
    ids=["move", "copy-secret", "literal-mask"],
)
def test_a_mask_under_another_name_is_400(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, patch: Any
) -> None:
    """A masked value only ever means "the value stored under this very name"."""
    created = _create(app_client, admin_headers)
    before = _stored(redis_client, created["_id"])
    response = _patch(app_client, admin_headers, created["_id"], patch)
    assert response.status_code == 400, response.text
    assert "config.headers.X-Leak" in [e["attribute"] for e in response.json()["errors"]]
    assert _stored(redis_client, created["_id"]) == before


# --- credentials do not follow a moved destination ---------------------------------------


@pytest.mark.parametrize(
    "new_url",
    [
        "https://attacker.example.net/collect",
        "http://hooks.example.com/audit",  # https -> http: same host, credentials in clear
        "https://hooks.example.com:8443/audit",
    ],
    ids=["host", "scheme", "port"],
)
def test_moving_the_url_alone_does_not_carry_credentials(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, new_url: str
) -> None:
    """PATCH /config/url to another origin: 400 naming every stored header to give again."""
    # given
    created = _create(app_client, admin_headers)
    before = _stored(redis_client, created["_id"])
    # when
    response = _patch(
        app_client,
        admin_headers,
        created["_id"],
        [{"op": "replace", "path": "/config/url", "value": new_url}],
    )
    # then
    assert response.status_code == 400, response.text
    attributes = {e["attribute"] for e in response.json()["errors"]}
    assert attributes == {f"config.headers.{name}" for name in HEADERS}
    assert _stored(redis_client, created["_id"]) == before
    assert _leaks(response.text) == []


def test_replacing_the_whole_config_with_a_new_url_does_not_carry_credentials(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """The GET-edit-write-back flow with another origin is refused the same way."""
    created = _create(app_client, admin_headers)
    shown = app_client.get(f"{BASE}/{created['_id']}", headers=admin_headers).json()["config"]
    edited = {**shown, "url": "https://attacker.example.net/collect"}
    response = _patch(
        app_client,
        admin_headers,
        created["_id"],
        [{"op": "replace", "path": "/config", "value": edited}],
    )
    assert response.status_code == 400, response.text
    assert {e["attribute"] for e in response.json()["errors"]} == {
        f"config.headers.{name}" for name in HEADERS
    }
    assert _stored(redis_client, created["_id"]).config["url"] == URL


def test_masked_query_values_do_not_follow_a_moved_destination(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A masked query value written with another origin is refused on config.url."""
    created = _create(app_client, admin_headers, headers={})
    response = _patch(
        app_client,
        admin_headers,
        created["_id"],
        [
            {
                "op": "replace",
                "path": "/config/url",
                "value": f"https://attacker.example.net/?code={MASK}",
            }
        ],
    )
    assert response.status_code == 400, response.text
    assert [e["attribute"] for e in response.json()["errors"]] == ["config.url"]


def test_moving_with_credentials_given_again_is_accepted(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Giving the headers again (or removing them) in the same request moves the destination."""
    created = _create(app_client, admin_headers)
    moved = _patch(
        app_client,
        admin_headers,
        created["_id"],
        [
            {"op": "replace", "path": "/config/url", "value": "https://new.example.net/h"},
            {
                "op": "replace",
                "path": "/config/headers",
                "value": {"Authorization": "Bearer new-one-42"},
            },
        ],
    )
    assert moved.status_code == 200, moved.text
    stored = _stored(redis_client, created["_id"])
    assert stored.config["url"] == "https://new.example.net/h"
    assert stored.config["headers"] == {"Authorization": "Bearer new-one-42"}
    assert stored.config["secret"] == SECRET  # relay's own signing key stays


def test_same_origin_change_keeps_credentials(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Another path (or an explicit default port) on the same origin keeps the stored headers."""
    created = _create(app_client, admin_headers)
    response = _patch(
        app_client,
        admin_headers,
        created["_id"],
        [{"op": "replace", "path": "/config/url", "value": "https://HOOKS.example.com:443/v2"}],
    )
    assert response.status_code == 200, response.text
    assert _stored(redis_client, created["_id"]).config["headers"] == HEADERS


# --- recorded receiver answers -----------------------------------------------------------

ECHO = f"denied: Authorization={BEARER} key=123456789 (supersecret-token-0123456789)"


def test_status_errors_never_show_credentials(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A receiver echoing the credentials: `_status.errors[].responseBody` has them masked."""
    # given
    created = _create(app_client, admin_headers)
    subscription_status.record_failure(
        redis_client, sub_id=created["_id"], at_ms=1, status_code=401, response_body=ECHO
    )
    reader = _token(redis_client, Role.READER)
    # when
    one = app_client.get(f"{BASE}/{created['_id']}", headers=reader)
    listed = app_client.get(BASE, headers=reader)
    # then
    body = one.json()["_status"]["errors"][0]["responseBody"]
    assert body.startswith("denied: Authorization=") and MASK in body
    assert _leaks(one.text) == [] and _leaks(listed.text) == []


def test_delivery_attempts_never_show_credentials(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Attempt bodies and errors (a header's repr in a protocol error too) are masked."""
    # given
    created = _create(app_client, admin_headers)
    sub_id, now = created["_id"], int(time.time() * 1000)
    delivery_id = deliveries.event_delivery_id(event_id=1, sub_id=sub_id)
    deliveries.create_deliveries(
        redis_client,
        deliveries=[NewDelivery(delivery_id, DeliveryKind.EVENT, sub_id, 1)],
        now_ms=now,
        due_at_ms=now,
    )
    deliveries.claim(redis_client, ids=[delivery_id], now_ms=now, lease_ms=60_000)
    error = f"protocol error: invalid request: illegal header 'authorization': {BEARER!r}"
    attempt = Attempt(
        at=now, status_code=401, duration_ms=3, error=error, response_body=ECHO, outcome="dead"
    )
    deliveries.finish(
        redis_client,
        results=[Finish(delivery_id, DeliveryState.DEAD, attempt, reason=error)],
        now_ms=now,
        ttl_s=3600,
    )
    # when
    listed = app_client.get(f"{BASE}/{sub_id}/deliveries", headers=admin_headers)
    # then
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert item["attempts"][0]["responseBody"].startswith("denied:")
    assert _leaks(listed.text) == []


def test_short_or_plain_words_are_not_masked_in_answers(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Redaction replaces the credentials only: the rest of a receiver's answer stays readable."""
    created = _create(app_client, admin_headers)
    subscription_status.record_failure(
        redis_client,
        sub_id=created["_id"],
        at_ms=1,
        status_code=500,
        response_body="upstream timeout after 30 s",
    )
    shown = app_client.get(f"{BASE}/{created['_id']}", headers=admin_headers).json()
    assert shown["_status"]["errors"][0]["responseBody"] == "upstream timeout after 30 s"


def test_no_answer_contains_a_credential(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """Create, patch and error answers of a writer hold no stored credential either."""
    created = _create(app_client, admin_headers)
    patched = _patch(
        app_client,
        admin_headers,
        created["_id"],
        [{"op": "replace", "path": "/name", "value": "x"}],
    )
    bad = _patch(
        app_client,
        admin_headers,
        created["_id"],
        [{"op": "replace", "path": "/config/headers/X-Api-Key", "value": "bad\nvalue"}],
    )
    assert patched.status_code == 200 and bad.status_code == 400
    for text in (patched.text, bad.text):
        assert _leaks(text) == [], text
    assert re.search(r"\*{8}", patched.text)


@pytest.mark.e2e
@pytest.mark.slow
def test_end_to_end_a_receiver_echo_is_masked_and_the_url_cannot_move(
    settings: Settings,
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    receivers: Callable[[], Any],
    start_worker: Callable[..., Any],
) -> None:
    """A real worker sends the header to its receiver, which echoes it: readers see it masked."""
    # given: a receiver that refuses and echoes the token, and a real worker
    receiver = receivers()
    receiver.always(401, body=f"denied: {BEARER}".encode())
    start_worker(settings, beat=True)
    body = {"name": "e2e", "config": {"url": receiver.url, "headers": {"Authorization": BEARER}}}
    created = app_client.post(BASE, json=body, headers=admin_headers).json()
    event = {"id": 1, "type": "feature-created", "createdBy": "a@example.com", "project": "p"}
    # when
    assert app_client.post("/api/events", json=event, headers=admin_headers).status_code == 202
    [first, *_] = receiver.wait_for(1)
    reader = _token(redis_client, Role.READER)
    deadline = time.monotonic() + 20
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline and not shown.get("_status", {}).get("errors"):
        time.sleep(0.1)
        shown = app_client.get(f"{BASE}/{created['_id']}", headers=reader).json()
    moved = _patch(
        app_client,
        admin_headers,
        created["_id"],
        [{"op": "replace", "path": "/config/url", "value": receivers().url}],
    )
    # then: the credential went to its own receiver only, and no answer shows it
    assert first.headers["authorization"] == BEARER
    assert shown["_status"]["errors"][0]["responseBody"] == f"denied: {MASK}"
    assert moved.status_code == 400
    assert [e["attribute"] for e in moved.json()["errors"]] == ["config.headers.Authorization"]
