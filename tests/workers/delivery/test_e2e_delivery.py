"""End to end: the API, a real Celery worker process (with beat) and real HTTP receivers.

The module shares one Redis of its own and one worker; every test makes its own
subscriptions and receivers, so tests do not see each other's deliveries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from relay.api.app import create_app
from relay.cli.embedded_redis import start_redis
from relay.settings import Settings
from relay.store.client import connect
from tests import support
from tests.support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": "e2e-admin"}
SUBS = "/api/v2/integrations/webhook"


@pytest.fixture(scope="module")
def e2e_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings on a Redis of this module's own: fast retries, short leases."""
    server = start_redis(tmp_path_factory.mktemp("e2e-redis"))
    yield support.e2e_settings(
        redis_url=server.url,
        admin_token=ADMIN["Authorization"],
        data_dir=tmp_path_factory.mktemp("e2e-data"),
    )
    server.stop()


@pytest.fixture(scope="module")
def worker(e2e_settings: Settings, start_module_worker: Callable[..., Any]) -> Iterator[Any]:
    process = start_module_worker(e2e_settings, beat=True)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def api(e2e_settings: Settings, worker: Any) -> Iterator[TestClient]:
    client = connect(e2e_settings.require_redis_url())
    with TestClient(create_app(e2e_settings, redis=client)) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def no_earlier_subscriptions(api: TestClient) -> None:
    """Each test starts with no subscriptions: an earlier test's one may point at a port
    the OS has since handed to this test's receiver."""
    for item in api.get(SUBS, headers=ADMIN).json()["items"]:
        assert api.delete(f"{SUBS}/{item['_id']}", headers=ADMIN).status_code == 204


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_subscription(
    api: TestClient, url: str, *, secret: str | None = None, **fields: Any
) -> str:
    """A subscription named e2e, signed with `secret` (a new one by default)."""
    secret = secret or new_secret()
    return support.subscribe_via_api(api, url, name="e2e", headers=ADMIN, secret=secret, **fields)


def post_events(api: TestClient, *events: dict[str, Any]) -> list[int]:
    return support.post_events(api, events, headers=ADMIN)


def flag_event(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "feature-created",
        "createdBy": "e2e@example.com",
        "featureName": name,
        "project": "default",
        **extra,
    }


def deliveries_of(api: TestClient, sub_id: str, **params: Any) -> list[dict[str, Any]]:
    return support.deliveries_of(api, sub_id, headers=ADMIN, **params)


def test_ingested_event_is_delivered_with_verifiable_signatures(
    api: TestClient, receivers: Any
) -> None:
    """An ingested event reaches the receiver once, signed for Standard Webhooks and LD."""
    # given
    receiver = receivers()
    secret = new_secret()
    sub_id = create_subscription(api, receiver.url, secret=secret)
    # when
    [event_id] = post_events(api, flag_event("e2e-signed"))
    # then
    [request] = receiver.wait_for(1)
    assert request.headers["webhook-id"] == f"msg_{event_id}_{sub_id}"
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["id"] == event_id and payload["featureName"] == "e2e-signed"
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-ld-signature"] == expected
    [delivery] = eventually(lambda: deliveries_of(api, sub_id, state="delivered"))
    assert delivery["attempts"][0]["statusCode"] == 200
    assert delivery["attemptCount"] == 1


def test_failed_attempts_are_retried_with_the_same_webhook_id(
    api: TestClient, receivers: Any
) -> None:
    """500, 500, 200: three attempts of one delivery, one webhook-id, then delivered."""
    # given
    receiver = receivers()
    receiver.reply(500, body=b"down")
    receiver.reply(500, body=b"still down")
    sub_id = create_subscription(api, receiver.url)
    # when
    post_events(api, flag_event("e2e-retried"))
    # then
    requests = receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    [delivery] = eventually(lambda: deliveries_of(api, sub_id, state="delivered"))
    assert [a["statusCode"] for a in delivery["attempts"]] == [500, 500, 200]
    assert delivery["attempts"][0]["responseBody"] == "down"
    assert all(a["durationMs"] >= 0 for a in delivery["attempts"])


def test_retry_after_is_honoured(api: TestClient, receivers: Any) -> None:
    """503 with Retry-After: 2 delays the next attempt by 2 s, though the schedule says 0.2 s."""
    # given
    receiver = receivers()
    receiver.reply(503, headers={"Retry-After": "2"})
    create_subscription(api, receiver.url)
    # when
    post_events(api, flag_event("e2e-retry-after"))
    # then
    first, second = receiver.wait_for(2)
    assert second.at - first.at >= 2.0


def test_410_turns_the_subscription_off(api: TestClient, receivers: Any) -> None:
    """A 410 Gone turns the subscription off, and it receives nothing more."""
    # given
    gone, control = receivers(), receivers()
    gone.always(410, body=b"unsubscribed")
    gone_id = create_subscription(api, gone.url)
    create_subscription(api, control.url)
    post_events(api, flag_event("e2e-gone-1"))
    gone.wait_for(1)
    eventually(lambda: not api.get(f"{SUBS}/{gone_id}", headers=ADMIN).json()["on"])
    # when
    post_events(api, flag_event("e2e-gone-2"))
    # then
    control.wait_for(2)
    assert len(gone.received) == 1
    status = api.get(f"{SUBS}/{gone_id}", headers=ADMIN).json()["_status"]
    assert "410" in status["disabledReason"]
    [delivery] = deliveries_of(api, gone_id)
    assert delivery["state"] == "gone"


def test_off_and_excluding_subscriptions_receive_nothing(api: TestClient, receivers: Any) -> None:
    """A subscription that is off, or whose policy excludes the event, receives nothing."""
    # given
    off, excluding, control = receivers(), receivers(), receivers()
    off_id = create_subscription(api, off.url, on=False)
    deny_all = [{"effect": "deny", "resources": ["proj/*:env/*:flag/*"], "actions": ["*"]}]
    create_subscription(api, excluding.url, statements=deny_all)
    create_subscription(api, control.url)
    # when
    post_events(api, flag_event("e2e-off-1"), flag_event("e2e-off-2"))
    # then
    control.wait_for(2)
    time.sleep(0.3)  # a margin for a wrong delivery racing the control one
    assert off.received == [] and excluding.received == []
    assert deliveries_of(api, off_id) == []


def test_exhausted_delivery_is_dead_and_the_retry_endpoint_revives_it(
    api: TestClient, receivers: Any
) -> None:
    """After the schedule is exhausted the delivery is dead; retry sends it again."""
    # given
    receiver = receivers()
    receiver.always(500)
    sub_id = create_subscription(api, receiver.url)
    post_events(api, flag_event("e2e-dead"))
    receiver.wait_for(4)
    [dead] = eventually(lambda: deliveries_of(api, sub_id, state="dead"))
    assert dead["attemptCount"] == 4 and "4 attempts" in dead["reason"]
    # when
    receiver.always(200)
    url = f"{SUBS}/{sub_id}/deliveries/{dead['_id']}/retry"
    response = api.post(url, headers=ADMIN)
    # then
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "pending" and response.json()["attemptCount"] == 0
    requests = receiver.wait_for(5)
    assert requests[-1].headers["webhook-id"] == dead["_id"]
    [delivered] = eventually(lambda: deliveries_of(api, sub_id, state="delivered"))
    assert delivered["attemptCount"] == 1 and len(delivered["attempts"]) == 5


def test_replay_resends_a_time_range_as_new_deliveries(api: TestClient, receivers: Any) -> None:
    """Replaying [from, to] re-sends the events recorded in it, with new webhook-ids."""
    # given
    receiver = receivers()
    sub_id = create_subscription(api, receiver.url)
    base = int(time.time()) - 2 * 86_400  # past (a createdAt may not be ahead), within retention
    times = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + s)) for s in (1, 2, 3)]
    ids = post_events(
        api, *(flag_event(f"e2e-replay-{i}", createdAt=t) for i, t in enumerate(times))
    )
    receiver.wait_for(3)
    # when
    body = {"from": times[1], "to": (base + 3) * 1000}
    response = api.post(f"{SUBS}/{sub_id}/replay", json=body, headers=ADMIN)
    # then
    assert response.status_code == 202, response.text
    assert response.json()["count"] == 2
    requests = receiver.wait_for(5)
    replayed = {json.loads(r.body)["id"]: r.headers["webhook-id"] for r in requests[3:]}
    assert sorted(replayed) == ids[1:]
    assert set(replayed.values()) == set(response.json()["ids"])
    assert all(f"msg_{i}_{sub_id}_r" in replayed[i] for i in ids[1:])


def test_test_endpoint_answers_with_the_first_attempt(api: TestClient, receivers: Any) -> None:
    """POST .../test sends a test event now and answers with how the attempt went."""
    # given
    receiver = receivers()
    receiver.reply(200, body=b"hello")
    receiver.reply(500, body=b"nope")
    sub_id = create_subscription(api, receiver.url)
    # when
    first = api.post(f"{SUBS}/{sub_id}/test", headers=ADMIN)
    second = api.post(f"{SUBS}/{sub_id}/test", headers=ADMIN)
    # then
    assert first.status_code == 200, first.text
    assert first.json()["state"] == "delivered"
    assert first.json()["attempts"][0]["responseBody"] == "hello"
    assert second.json()["state"] == "dead"
    assert second.json()["attempts"][0]["statusCode"] == 500
    assert json.loads(receiver.received[0].body)["type"] == "relay-test"


def test_a_429_with_retry_after_keeps_the_whole_subscription_silent_until_then(
    api: TestClient, receivers: Any
) -> None:
    """429 with Retry-After: 3: nothing reaches the receiver for 3 s, not even the other
    events' deliveries, which wait without an attempt; `_status` shows the pause; then
    everything is delivered."""
    # given: the first request is answered 429, Retry-After 3
    receiver = receivers()
    receiver.reply(429, headers={"Retry-After": "3"}, body=b"slow down")
    sub_id = create_subscription(api, receiver.url)
    post_events(api, flag_event("paused-0"))
    [refused] = receiver.wait_for(1)
    # when: more events come while the subscription is paused
    status = eventually(
        lambda: api.get(f"{SUBS}/{sub_id}", headers=ADMIN).json()["_status"].get("pausedUntil")
    )
    post_events(api, *[flag_event(f"paused-{n}") for n in range(1, 6)])
    # then: the receiver hears nothing more for 3 s, then gets all six
    assert status >= refused.at * 1000 + 2_900
    requests = receiver.wait_for(7, timeout=30)
    assert min(r.at for r in requests[1:]) - refused.at >= 2.9
    delivered = eventually(
        lambda: len(found := deliveries_of(api, sub_id, state="delivered")) == 6 and found
    )
    assert sorted(d["attemptCount"] for d in delivered) == [1, 1, 1, 1, 1, 2]
