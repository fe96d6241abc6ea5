"""The subscription store and its status, on a real Redis."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from relay import clock
from relay.store import keys, subscription_status, subscriptions
from relay.store.client import Redis
from relay.store.subscriptions import SECRET_OVERLAP_MS, SubscriptionRecord


def _create(client: Redis, **overrides: Any) -> SubscriptionRecord:
    fields: dict[str, Any] = {
        "integration_key": "webhook",
        "name": "audit",
        "config": {
            "url": "https://example.com/hook",
            "secret": "whsec_first",
            "format": "unleash",
            "headers": {},
        },
        "statements": [{"effect": "allow", "resources": ["proj/*"], "actions": ["*"]}],
        "on": True,
        "tags": ["ops"],
    }
    fields.update(overrides)
    return subscriptions.create_subscription(client, **fields)


def test_created_subscription_reads_back_equal(redis_client: Redis) -> None:
    """A created subscription is read back field for field, listed, and bumps the version."""
    # given
    before = subscriptions.subscriptions_version(redis_client)
    # when
    created = _create(redis_client)
    # then
    assert subscriptions.get_subscription(redis_client, sub_id=created.id) == created
    assert subscriptions.list_subscriptions(redis_client) == [created]
    assert subscriptions.subscriptions_version(redis_client) == before + 1
    assert len(created.id) == 24


def test_list_filters_by_integration_key_oldest_first(redis_client: Redis) -> None:
    """Listing by integration key returns only that integration's subscriptions, oldest first."""
    first = _create(redis_client, name="one")
    other = _create(redis_client, integration_key="slack", name="other")
    second = _create(redis_client, name="two")
    listed = subscriptions.list_subscriptions(redis_client, integration_key="webhook")
    assert [r.id for r in listed] == [first.id, second.id]
    assert other.id not in {r.id for r in listed}


def test_unknown_subscription_is_none(redis_client: Redis) -> None:
    """Reading, updating, turning off or deleting an unknown id finds nothing and bumps nothing."""
    assert subscriptions.get_subscription(redis_client, sub_id="nope") is None
    assert (
        subscriptions.update_subscription(redis_client, sub_id="nope", change=lambda r: r) is None
    )
    subscriptions.turn_off(redis_client, sub_id="nope", reason="gone")
    assert subscriptions.delete_subscription(redis_client, sub_id="nope") is False
    assert subscriptions.subscriptions_version(redis_client) == 0
    assert redis_client.keys("relay:sub:*") == []


def test_update_applies_change_and_bumps_version(redis_client: Redis) -> None:
    """An update stores the changed document and bumps the version once."""
    created = _create(redis_client)
    version = subscriptions.subscriptions_version(redis_client)
    updated = subscriptions.update_subscription(
        redis_client, sub_id=created.id, change=lambda r: replace(r, name="renamed")
    )
    assert updated is not None and updated.name == "renamed"
    assert subscriptions.get_subscription(redis_client, sub_id=created.id) == updated
    assert subscriptions.subscriptions_version(redis_client) == version + 1


def test_update_without_change_writes_nothing(redis_client: Redis) -> None:
    """An update that changes nothing leaves the version alone."""
    created = _create(redis_client)
    version = subscriptions.subscriptions_version(redis_client)
    same = subscriptions.update_subscription(redis_client, sub_id=created.id, change=lambda r: r)
    assert same == created
    assert subscriptions.subscriptions_version(redis_client) == version


def test_failing_change_writes_nothing(redis_client: Redis) -> None:
    """An exception raised by the change aborts the update with the document untouched."""
    created = _create(redis_client)
    version = subscriptions.subscriptions_version(redis_client)

    def explode(record: SubscriptionRecord) -> SubscriptionRecord:
        raise ValueError("bad")

    with pytest.raises(ValueError):
        subscriptions.update_subscription(redis_client, sub_id=created.id, change=explode)
    assert subscriptions.get_subscription(redis_client, sub_id=created.id) == created
    assert subscriptions.subscriptions_version(redis_client) == version


def test_changed_secret_keeps_previous_for_a_day(redis_client: Redis) -> None:
    """Replacing the secret keeps the old one as previous_secret, valid for 24 hours."""
    # given
    created = _create(redis_client)
    # when
    before = clock.now_ms()
    updated = subscriptions.update_subscription(
        redis_client,
        sub_id=created.id,
        change=lambda r: replace(r, config={**r.config, "secret": "whsec_second"}),
    )
    after = clock.now_ms()
    # then
    assert updated is not None
    assert updated.previous_secret == "whsec_first"
    assert updated.previous_secret_until is not None
    assert before + SECRET_OVERLAP_MS <= updated.previous_secret_until <= after + SECRET_OVERLAP_MS
    assert updated.signing_secrets(now_ms=after) == ["whsec_second", "whsec_first"]
    assert updated.signing_secrets(now_ms=updated.previous_secret_until) == ["whsec_second"]


def test_turn_off_records_reason_once(redis_client: Redis) -> None:
    """turn_off switches it off, shows the reason in the status, and bumps the version."""
    # given
    created = _create(redis_client)
    version = subscriptions.subscriptions_version(redis_client)
    # when
    subscriptions.turn_off(redis_client, sub_id=created.id, reason="410 Gone from receiver")
    # then
    stored = subscriptions.get_subscription(redis_client, sub_id=created.id)
    assert stored is not None and stored.on is False
    status = subscription_status.get_status(redis_client, sub_id=created.id)
    assert status["disabledReason"] == "410 Gone from receiver"
    assert isinstance(status["disabledAt"], int)
    assert subscriptions.subscriptions_version(redis_client) == version + 1


def test_turning_back_on_clears_reason_and_failing_run(redis_client: Redis) -> None:
    """Turning a subscription back on forgets why it was off and when failures began."""
    # given
    created = _create(redis_client)
    subscription_status.record_failure(
        redis_client, sub_id=created.id, at_ms=1000, status_code=500, response_body="x"
    )
    subscriptions.turn_off(redis_client, sub_id=created.id, reason="failing for 5 days")
    # when
    subscriptions.update_subscription(
        redis_client, sub_id=created.id, change=lambda r: replace(r, on=True)
    )
    # then
    status = subscription_status.get_status(redis_client, sub_id=created.id)
    assert "disabledReason" not in status and "failingSince" not in status
    assert status["errorCount"] == 1


def test_delete_removes_document_status_and_errors(redis_client: Redis) -> None:
    """Deleting removes the document, its index entry, status and errors, and bumps the version."""
    # given
    created = _create(redis_client)
    subscription_status.record_success(redis_client, sub_id=created.id, at_ms=5)
    subscription_status.record_failure(
        redis_client, sub_id=created.id, at_ms=6, status_code=None, response_body="refused"
    )
    version = subscriptions.subscriptions_version(redis_client)
    # when
    assert subscriptions.delete_subscription(redis_client, sub_id=created.id) is True
    # then
    assert subscriptions.get_subscription(redis_client, sub_id=created.id) is None
    assert redis_client.zscore(keys.SUBS, created.id) is None
    assert not redis_client.exists(*subscription_status.status_keys(created.id))
    assert subscriptions.subscriptions_version(redis_client) == version + 1


def test_status_counts_and_keeps_last_ten_errors(redis_client: Redis) -> None:
    """Failures are counted and the last 10 kept newest first; a success clears failing_since."""
    # given
    created = _create(redis_client)
    for n in range(12):
        subscription_status.record_failure(
            redis_client,
            sub_id=created.id,
            at_ms=100 + n,
            status_code=500 + n,
            response_body=f"e{n}",
        )
    assert subscription_status.failing_since(redis_client, sub_id=created.id) == 100
    # when
    subscription_status.record_success(redis_client, sub_id=created.id, at_ms=200)
    # then
    status = subscription_status.get_status(redis_client, sub_id=created.id)
    assert status["errorCount"] == 12 and status["successCount"] == 1
    assert status["lastError"] == 111 and status["lastSuccess"] == 200
    assert [e["responseBody"] for e in status["errors"]] == [f"e{n}" for n in range(11, 1, -1)]
    assert status["errors"][0] == {"statusCode": 511, "responseBody": "e11", "timestamp": 111}
    assert subscription_status.failing_since(redis_client, sub_id=created.id) is None


def test_error_without_status_code_omits_it(redis_client: Redis) -> None:
    """A connection failure (no status code) is listed without statusCode."""
    created = _create(redis_client)
    subscription_status.record_failure(
        redis_client, sub_id=created.id, at_ms=7, status_code=None, response_body="refused"
    )
    errors = subscription_status.get_status(redis_client, sub_id=created.id)["errors"]
    assert errors == [{"responseBody": "refused", "timestamp": 7}]


def test_status_of_deleted_subscription_is_not_recreated(redis_client: Redis) -> None:
    """A worker recording an attempt after deletion does not leave status keys behind."""
    created = _create(redis_client)
    subscriptions.delete_subscription(redis_client, sub_id=created.id)
    subscription_status.record_success(redis_client, sub_id=created.id, at_ms=1)
    subscription_status.record_failure(
        redis_client, sub_id=created.id, at_ms=2, status_code=500, response_body="x"
    )
    assert not redis_client.exists(*subscription_status.status_keys(created.id))


def test_status_of_fresh_subscription_is_zero(redis_client: Redis) -> None:
    """A subscription never delivered to has zero counts and no errors."""
    created = _create(redis_client)
    status = subscription_status.get_status(redis_client, sub_id=created.id)
    assert status == {"successCount": 0, "errorCount": 0, "errors": []}


def test_a_changed_url_closes_the_circuit(redis_client: Redis) -> None:
    """A writer who moves the URL gets its deliveries tried at once, not after the next probe;
    a change that keeps the URL leaves the circuit open."""
    from tests.relay.store.test_delivery_limits import open_circuit

    # given
    kept, moved = _create(redis_client), _create(redis_client)
    for record in (kept, moved):
        open_circuit(redis_client, record.id)

    def rename(record: SubscriptionRecord) -> SubscriptionRecord:
        return replace(record, name="renamed")

    def move(record: SubscriptionRecord) -> SubscriptionRecord:
        return replace(record, config={**record.config, "url": "https://example.org/fixed"})

    # when
    subscriptions.update_subscription(redis_client, sub_id=kept.id, change=rename)
    subscriptions.update_subscription(redis_client, sub_id=moved.id, change=move)
    # then
    assert subscription_status.get_status(redis_client, sub_id=kept.id)["circuitState"] == "open"
    assert "circuitState" not in subscription_status.get_status(redis_client, sub_id=moved.id)
    assert redis_client.zrange(keys.CIRCUITS, 0, -1) == [kept.id]
