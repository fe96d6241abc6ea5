"""End to end: relay's own events about subscriptions reach an operator's subscription with
an ordinary policy, never the subscription they are about, and never feed on themselves."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.cli.embedded_redis import start_redis
from relay.settings import Settings
from tests import support

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": "e2e-admin"}
SUBS = "/api/v2/integrations/webhook"
EVERYTHING = [
    {"effect": "allow", "resources": ["proj/*:env/*:flag/*", "integration/*"], "actions": ["*"]}
]
DEAD_LETTERS = [{"effect": "allow", "resources": ["integration/*"], "actions": ["delivery-dead"]}]


@pytest.fixture(scope="module")
def e2e_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    server = start_redis(tmp_path_factory.mktemp("operational-redis"))
    yield support.e2e_settings(
        redis_url=server.url,
        admin_token=ADMIN["Authorization"],
        data_dir=tmp_path_factory.mktemp("operational-data"),
    )
    server.stop()


@pytest.fixture(scope="module")
def api(e2e_settings: Settings, start_module_worker: Callable[..., Any]) -> Iterator[TestClient]:
    with support.api_with_worker(e2e_settings, start_module_worker) as client:
        yield client


@pytest.fixture(autouse=True)
def no_earlier_subscriptions(api: TestClient) -> None:
    """Each test starts with no subscriptions: an earlier test's would hear of this one's."""
    for item in api.get(SUBS, headers=ADMIN).json()["items"]:
        assert api.delete(f"{SUBS}/{item['_id']}", headers=ADMIN).status_code == 204


def _relay_events(api: TestClient, kind: str) -> list[dict[str, Any]]:
    found = api.get("/api/admin/events", params={"limit": 1000}, headers=ADMIN).json()["events"]
    return [e for e in found if e["type"] == kind and e.get("createdBy") == "relay"]


def test_a_dead_letter_reaches_the_operator_and_not_its_own_subscription(
    api: TestClient, receivers: Any
) -> None:
    """A subscription whose receiver refuses everything: its delivery dies, relay records
    `delivery-dead` about it; the operator's policy gets it, the dying one does not, nor
    one without statements (it gets flag events only)."""
    # given: a subscription that takes everything, its receiver answering 400
    dying = receivers()
    dying.always(400, body=b"no")
    dying_id = support.subscribe_via_api(
        api, dying.url, name="ops", headers=ADMIN, statements=EVERYTHING
    )
    operator = receivers()
    operator_id = support.subscribe_via_api(
        api, operator.url, name="ops", headers=ADMIN, statements=DEAD_LETTERS
    )
    unasked = receivers()  # no statements: every flag event, none of relay's own
    support.subscribe_via_api(api, unasked.url, name="all", headers=ADMIN)
    # when: an event for it dies after its attempts
    support.post_events(api, [support.unleash_event(featureName="ops-flag")], headers=ADMIN)
    # then: the operator hears of it, once, with the subscription named
    [request] = operator.wait_for(1, timeout=30)
    event = json.loads(request.body)
    assert event["type"] == "delivery-dead" and event["createdBy"] == "relay"
    assert event["data"]["subscription"] == f"webhook/{dying_id}"
    assert event["data"]["subscriptionId"] == dying_id
    # and it is in the events API, and no delivery of it went to the dying subscription
    support.eventually(lambda: _relay_events(api, "delivery-dead"))
    time.sleep(1.0)
    for receiver in (dying, unasked):
        assert all(json.loads(r.body).get("type") != "delivery-dead" for r in receiver.received)
    assert len(unasked.received) == 1
    assert operator_id not in {
        e["data"]["subscriptionId"] for e in _relay_events(api, "delivery-dead")
    }


def test_dead_letters_of_operational_events_make_no_more(api: TestClient, receivers: Any) -> None:
    """Two subscriptions listening to each other's dead letters, both refusing everything:
    the dead deliveries of relay's own events make no new events (no ping-pong)."""
    # given
    first, second = receivers(), receivers()
    for receiver in (first, second):
        receiver.always(400, body=b"no")
    ids = [
        support.subscribe_via_api(api, r.url, name="ops", headers=ADMIN, statements=EVERYTHING)
        for r in (first, second)
    ]
    before = len(_relay_events(api, "delivery-dead"))
    # when: one flag event dies at both
    support.post_events(api, [support.unleash_event(featureName="ping-pong")], headers=ADMIN)
    # then: two dead letters about the flag event, each told to the other, and no more
    support.eventually(lambda: len(_relay_events(api, "delivery-dead")) >= before + 2, timeout=30)
    support.eventually(lambda: len(first.received) >= 8 and len(second.received) >= 8, timeout=30)
    time.sleep(4.0)  # the told dead letters die too: they must not make new ones
    found = _relay_events(api, "delivery-dead")  # newest first
    about = [e["data"]["subscriptionId"] for e in found[: len(found) - before]]
    assert sorted(about) == sorted(ids)
