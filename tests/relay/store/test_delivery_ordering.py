"""Ordered subscriptions in the delivery store (real Redis): only the head of an ordering
key goes; finishing it (delivered or dead) lets the next go; other keys keep flowing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from relay.store import deliveries, events, keys, subscription_status, subscriptions, tokens
from relay.store.client import Redis
from relay.store.deliveries import DeliveryKind, DeliveryState, Finish, Limits, NewDelivery
from relay.store.tokens import Role
from tests.support import subscribe, unleash_event

NOW = 1_800_000_000_000
LEASE = 60_000
LIMITS = Limits(
    max_in_flight=10,
    lease_ms=LEASE,
    circuit_failures=3,
    circuit_cooldown_ms=10_000,
    circuit_cooldown_max_ms=25_000,
)


def pending(client: Redis, sub_id: str, *items: tuple[int, str]) -> list[str]:
    """Deliveries of (event id, ordering key) to `sub_id`; their ids."""
    made = [
        NewDelivery(
            deliveries.event_delivery_id(event_id=event, sub_id=sub_id),
            DeliveryKind.EVENT,
            sub_id,
            event,
            order_key=key,
        )
        for event, key in items
    ]
    return deliveries.create_deliveries(client, deliveries=made, now_ms=NOW, due_at_ms=NOW)


def claim(client: Redis, ids: list[str], at: int = NOW) -> list[str]:
    claimed = deliveries.claim(client, ids=ids, now_ms=at, lease_ms=LEASE, limits=LIMITS)
    return [d.id for d in claimed]


def settle(client: Redis, sub_id: str, delivery_id: str, state: DeliveryState) -> list[str]:
    later = NOW + 5_000 if state is DeliveryState.FAILED else None
    finish = Finish(delivery_id, state, next_attempt_at=later, sub_id=sub_id)
    settled = deliveries.settle(client, results=[finish], now_ms=NOW + 1, ttl_s=60, limits=LIMITS)
    return settled.promoted


def due(client: Redis, ids: list[str]) -> list[bool]:
    return [score is not None for score in client.zmscore(keys.DUE, ids)]


def test_only_the_head_of_a_key_goes_and_other_keys_flow(redis_client: Redis) -> None:
    """Three events of flag a and one of flag b: a's first and b's go; a's others leave the
    due set, unattempted, behind their head."""
    # given
    sub_id = subscribe(redis_client)
    a1, a2, b1, a3 = pending(
        redis_client, sub_id, (1, "flag:p/a"), (2, "flag:p/a"), (3, "flag:p/b"), (4, "flag:p/a")
    )
    # when
    claimed = claim(redis_client, [a3, a2, b1, a1])
    # then
    assert sorted(claimed) == sorted([a1, b1])
    assert due(redis_client, [a2, a3]) == [False, False]
    assert all(deliveries.get_delivery(redis_client, delivery_id=i).attempts == 0 for i in (a2, a3))  # type: ignore[union-attr]


def test_a_retrying_head_holds_its_key_until_it_is_delivered(redis_client: Redis) -> None:
    """The head fails and will retry: the next stays held; delivered, it hands the key on."""
    # given
    sub_id = subscribe(redis_client)
    a1, a2 = pending(redis_client, sub_id, (1, "flag:p/a"), (2, "flag:p/a"))
    claim(redis_client, [a1, a2])
    # when: the head fails (a retry is scheduled)
    assert settle(redis_client, sub_id, a1, DeliveryState.FAILED) == []
    # then
    assert claim(redis_client, [a2], at=NOW + 2) == []
    # when: the head's retry is delivered
    assert claim(redis_client, [a1], at=NOW + 5_000) == [a1]
    promoted = settle(redis_client, sub_id, a1, DeliveryState.DELIVERED)
    # then: the next goes at once
    assert promoted == [a2] and due(redis_client, [a2]) == [True]
    assert claim(redis_client, [a2], at=NOW + 5_001) == [a2]


def test_a_dead_head_does_not_block_its_key(redis_client: Redis) -> None:
    """A head that dies lets the next go; `_status` showed what held the key meanwhile."""
    # given
    sub_id = subscribe(redis_client)
    a1, a2, a3 = pending(redis_client, sub_id, (1, "flag:p/a"), (2, "flag:p/a"), (3, "flag:p/a"))
    claim(redis_client, [a1, a2, a3])
    settle(redis_client, sub_id, a1, DeliveryState.FAILED)
    # then: the key is shown held back by its failing head
    [held] = subscription_status.held_back(redis_client, sub_id=sub_id)
    assert held["key"] == "flag:p/a" and held["waiting"] == 2 and held["head"] == a1
    assert held["headState"] == "failed" and held["headNextAttemptAt"] == NOW + 5_000
    # when: it dies
    claim(redis_client, [a1], at=NOW + 5_000)
    promoted = settle(redis_client, sub_id, a1, DeliveryState.DEAD)
    # then
    assert promoted == [a2]
    assert subscription_status.held_back(redis_client, sub_id=sub_id)[0]["head"] == a2


def test_unordered_deliveries_and_revived_ones_are_not_held(redis_client: Redis) -> None:
    """Deliveries without a key all go; a delivery retried by hand after it left its key's
    list goes too."""
    sub_id = subscribe(redis_client)
    free = pending(redis_client, sub_id, (1, ""), (2, ""), (3, ""))
    assert sorted(claim(redis_client, free)) == sorted(free)
    a1, a2 = pending(redis_client, sub_id, (4, "subscription"), (5, "subscription"))
    claim(redis_client, [a1, a2])
    settle(redis_client, sub_id, a1, DeliveryState.DEAD)
    claim(redis_client, [a2], at=NOW + 2)  # the new head is out
    deliveries.revive(redis_client, delivery_id=a1, now_ms=NOW + 3, due_at_ms=NOW + 3)
    assert claim(redis_client, [a1], at=NOW + 4) == [a1]


def test_deleting_a_subscription_releases_what_its_keys_held(redis_client: Redis) -> None:
    """Held deliveries of a deleted subscription are due again, so they end as skipped."""
    sub_id = subscribe(redis_client)
    a1, a2, a3 = pending(redis_client, sub_id, (1, "flag:p/a"), (2, "flag:p/a"), (3, "flag:p/a"))
    claim(redis_client, [a1, a2, a3])
    subscriptions.delete_subscription(redis_client, sub_id=sub_id)
    assert due(redis_client, [a2, a3]) == [True, True]
    assert (
        redis_client.exists(
            keys.subscription_orders(sub_id), keys.subscription_order(sub_id, "flag:p/a")
        )
        == 0
    )


def test_status_shows_the_keys_held_back_to_writers_and_readers(
    redis_client: Redis, app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    """GET of an ordered subscription shows each held key, its head and how many wait;
    a reader sees no receiver words in the head's reason."""
    # given: the head of flag a failed with the receiver's words, two wait behind it
    sub_id = subscribe(redis_client, delivery={"ordering": "flag"})
    a1, a2, a3 = pending(redis_client, sub_id, (1, "flag:p/a"), (2, "flag:p/a"), (3, "flag:p/a"))
    claim(redis_client, [a1, a2, a3])
    failed = Finish(
        a1, DeliveryState.FAILED, next_attempt_at=NOW + 5_000, reason="boom", sub_id=sub_id
    )
    deliveries.settle(redis_client, results=[failed], now_ms=NOW + 1, ttl_s=60, limits=LIMITS)
    _, reader = tokens.create_token(redis_client, name="r", role=Role.READER)
    # when
    href = f"/api/v2/integrations/webhook/{sub_id}"
    shown = app_client.get(href, headers=admin_headers).json()["_status"]["heldBack"]
    read = app_client.get(href, headers={"Authorization": reader}).json()["_status"]
    # then
    assert shown == [
        {
            "key": "flag:p/a",
            "waiting": 2,
            "head": a1,
            "headState": "failed",
            "headAttempts": 0,
            "headNextAttemptAt": NOW + 5_000,
            "headReason": "boom",
        }
    ]
    assert read["heldBack"][0]["head"] == a1 and "headReason" not in read["heldBack"][0]


def test_a_later_event_waits_for_an_earlier_events_fan_out(redis_client: Redis) -> None:
    """Fan-outs run concurrently: the later event's delivery exists first. It does not go
    while the earlier event is still in the outbox; once that one is fanned out, the
    earlier delivery is the head and goes first."""
    # given: two recorded events of one flag, the later one fanned out first
    sub_id = subscribe(redis_client)
    early, late = events.record_events(
        redis_client,
        events=[unleash_event(featureName="a"), unleash_event(featureName="a")],
        source="t",
    )
    [late_id] = pending(redis_client, sub_id, (late, "flag:p/a"))
    events.remove_from_outbox(redis_client, ids=[late])
    # when: the later one is claimed while the earlier is not fanned out
    assert claim(redis_client, [late_id]) == []
    assert deliveries.release_fanned_out(redis_client, now_ms=NOW) == []
    # when: the earlier one is fanned out
    [early_id] = pending(redis_client, sub_id, (early, "flag:p/a"))
    events.remove_from_outbox(redis_client, ids=[early])
    released = deliveries.release_fanned_out(redis_client, now_ms=NOW + 1)
    # then: the later one is released, but the earlier goes first
    assert released == [late_id]
    assert claim(redis_client, [late_id, early_id], at=NOW + 2) == [early_id]
