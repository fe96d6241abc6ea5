"""The delivery store on a real Redis: idempotent creation, claims with leases, state moves."""

from __future__ import annotations

from relay.store import deliveries, keys
from relay.store.client import Redis
from relay.store.deliveries import (
    Attempt,
    DeliveryKind,
    DeliveryState,
    Finish,
    NewDelivery,
)

NOW = 1_800_000_000_000
LEASE = 60_000


def new(event_id: int, sub_id: str = "sub1") -> NewDelivery:
    delivery_id = deliveries.event_delivery_id(event_id=event_id, sub_id=sub_id)
    return NewDelivery(delivery_id, DeliveryKind.EVENT, sub_id, event_id)


def attempt(status: int | None, outcome: str) -> Attempt:
    return Attempt(
        at=NOW, status_code=status, duration_ms=12, error=None, response_body="x", outcome=outcome
    )


def create(client: Redis, *items: NewDelivery, now: int = NOW) -> list[str]:
    return deliveries.create_deliveries(
        client, deliveries=list(items), now_ms=now, due_at_ms=now + LEASE
    )


def test_delivery_ids_are_deterministic_and_replays_get_their_own() -> None:
    """The id of an (event, subscription) is fixed; a replay adds a suffix."""
    assert deliveries.event_delivery_id(event_id=7, sub_id="abc") == "msg_7_abc"
    replayed = deliveries.event_delivery_id(event_id=7, sub_id="abc", replay="r1")
    assert replayed == "msg_7_abc_rr1"


def test_creating_twice_creates_once(redis_client: Redis) -> None:
    """A second creation of the same delivery changes nothing; a pending one is still returned."""
    # given
    first = create(redis_client, new(1), new(2))
    # when
    second = create(redis_client, new(1), now=NOW + 5_000)
    # then
    assert first == ["msg_1_sub1", "msg_2_sub1"] and second == ["msg_1_sub1"]
    delivery = deliveries.get_delivery(redis_client, delivery_id="msg_1_sub1")
    assert delivery is not None and delivery.created_at == NOW
    assert delivery.state is DeliveryState.PENDING and delivery.event_id == 1
    assert redis_client.zscore(keys.DUE, "msg_1_sub1") == NOW + LEASE


def test_a_claim_is_exclusive_until_its_lease_ends(redis_client: Redis) -> None:
    """Claimed once while the lease lasts; claimable again after it ends."""
    # given
    create(redis_client, new(1))
    # when
    first = deliveries.claim(redis_client, ids=["msg_1_sub1"], now_ms=NOW, lease_ms=LEASE)
    again = deliveries.claim(redis_client, ids=["msg_1_sub1"], now_ms=NOW + 1, lease_ms=LEASE)
    later = deliveries.claim(redis_client, ids=["msg_1_sub1"], now_ms=NOW + LEASE, lease_ms=LEASE)
    # then
    assert [d.id for d in first] == ["msg_1_sub1"] and again == []
    assert [d.id for d in later] == ["msg_1_sub1"]
    assert redis_client.zscore(keys.DUE, "msg_1_sub1") == NOW + 2 * LEASE


def test_claim_skips_deliveries_not_yet_due_and_drops_finished_ones(redis_client: Redis) -> None:
    """A retry scheduled later is not claimed early; a delivered one leaves the due set."""
    # given
    create(redis_client, new(1), new(2))
    deliveries.claim(redis_client, ids=["msg_1_sub1", "msg_2_sub1"], now_ms=NOW, lease_ms=LEASE)
    deliveries.finish(
        redis_client,
        results=[
            Finish("msg_1_sub1", DeliveryState.FAILED, attempt(500, "retry"), NOW + 10_000),
            Finish("msg_2_sub1", DeliveryState.DELIVERED, attempt(200, "delivered")),
        ],
        now_ms=NOW,
        ttl_s=3600,
    )
    redis_client.zadd(keys.DUE, {"msg_2_sub1": NOW})  # a stale queue entry
    # when
    early = deliveries.claim(
        redis_client, ids=["msg_1_sub1", "msg_2_sub1"], now_ms=NOW + 5_000, lease_ms=LEASE
    )
    # then
    assert early == []
    assert redis_client.zscore(keys.DUE, "msg_2_sub1") is None
    due = deliveries.claim(redis_client, ids=["msg_1_sub1"], now_ms=NOW + 10_000, lease_ms=LEASE)
    assert [d.attempts for d in due] == [1]


def test_finish_moves_deliveries_to_their_next_state(redis_client: Redis) -> None:
    """Delivered leaves the queues and expires; failed is due at its time; dead is a dead letter."""
    # given
    create(redis_client, new(1), new(2), new(3))
    ids = ["msg_1_sub1", "msg_2_sub1", "msg_3_sub1"]
    deliveries.claim(redis_client, ids=ids, now_ms=NOW, lease_ms=LEASE)
    # when
    changed = deliveries.finish(
        redis_client,
        results=[
            Finish(ids[0], DeliveryState.DELIVERED, attempt(200, "delivered")),
            Finish(ids[1], DeliveryState.FAILED, attempt(503, "retry"), NOW + 2_000),
            Finish(ids[2], DeliveryState.DEAD, attempt(None, "dead"), reason="refused"),
        ],
        now_ms=NOW + 100,
        ttl_s=3600,
    )
    # then
    assert changed == ids
    assert redis_client.zcard(keys.CLAIMS) == 0
    assert redis_client.zscore(keys.DUE, ids[0]) is None
    assert redis_client.zscore(keys.DUE, ids[1]) == NOW + 2_000
    assert redis_client.zscore(keys.DEAD, ids[2]) == NOW + 100
    delivered = deliveries.get_delivery(redis_client, delivery_id=ids[0])
    assert delivered is not None and delivered.delivered_at == NOW + 100
    assert 0 < redis_client.ttl(keys.delivery(ids[0])) <= 3600
    assert redis_client.ttl(keys.delivery(ids[1])) == -1
    dead = deliveries.get_delivery(redis_client, delivery_id=ids[2])
    assert dead is not None and dead.reason == "refused" and dead.attempts == 1
    [recorded] = deliveries.get_attempts(redis_client, delivery_id=ids[1])
    assert recorded == attempt(503, "retry")


def test_a_finished_delivery_keeps_its_state_when_a_late_attempt_ends(redis_client: Redis) -> None:
    """A slow duplicate attempt is recorded but cannot undo a delivered state."""
    # given
    create(redis_client, new(1))
    deliveries.claim(redis_client, ids=["msg_1_sub1"], now_ms=NOW, lease_ms=LEASE)
    deliveries.finish(
        redis_client,
        results=[Finish("msg_1_sub1", DeliveryState.DELIVERED, attempt(200, "delivered"))],
        now_ms=NOW,
        ttl_s=0,
    )
    # when
    changed = deliveries.finish(
        redis_client,
        results=[Finish("msg_1_sub1", DeliveryState.FAILED, attempt(500, "retry"), NOW + 1)],
        now_ms=NOW + 1,
        ttl_s=0,
    )
    # then
    assert changed == []
    delivery = deliveries.get_delivery(redis_client, delivery_id="msg_1_sub1")
    assert delivery is not None and delivery.state is DeliveryState.DELIVERED
    assert delivery.attempts == 2 and redis_client.zscore(keys.DUE, "msg_1_sub1") is None


def test_take_due_hands_out_due_deliveries_once_per_lease(redis_client: Redis) -> None:
    """The pump takes what is due and sees it again only after a lease, unless claimed."""
    # given
    create(redis_client, new(1), new(2), now=NOW - LEASE)
    create(redis_client, new(3), now=NOW)
    # when
    taken = deliveries.take_due(redis_client, now_ms=NOW, requeue_ms=LEASE, limit=10)
    again = deliveries.take_due(redis_client, now_ms=NOW + 1, requeue_ms=LEASE, limit=10)
    # then
    assert sorted(taken) == ["msg_1_sub1", "msg_2_sub1"] and again == []
    assert redis_client.zscore(keys.DUE, "msg_1_sub1") == NOW + LEASE


def test_revive_makes_a_dead_delivery_pending_with_no_attempts(redis_client: Redis) -> None:
    """Revived: pending, attempts reset, due, no longer a dead letter, history kept."""
    # given
    create(redis_client, new(1))
    deliveries.claim(redis_client, ids=["msg_1_sub1"], now_ms=NOW, lease_ms=LEASE)
    deliveries.finish(
        redis_client,
        results=[Finish("msg_1_sub1", DeliveryState.DEAD, attempt(500, "retry"), reason="gave up")],
        now_ms=NOW,
        ttl_s=3600,
    )
    # when
    previous = deliveries.revive(
        redis_client, delivery_id="msg_1_sub1", now_ms=NOW + 9, due_at_ms=NOW + 99
    )
    # then
    assert previous == "dead"
    delivery = deliveries.get_delivery(redis_client, delivery_id="msg_1_sub1")
    assert delivery is not None and delivery.state is DeliveryState.PENDING
    assert delivery.attempts == 0 and delivery.reason == "" and delivery.next_attempt_at == NOW + 9
    assert redis_client.zscore(keys.DEAD, "msg_1_sub1") is None
    assert redis_client.zscore(keys.DUE, "msg_1_sub1") == NOW + 99
    assert redis_client.ttl(keys.delivery("msg_1_sub1")) == -1
    assert len(deliveries.get_attempts(redis_client, delivery_id="msg_1_sub1")) == 1


def test_revive_leaves_delivered_and_unknown_deliveries_alone(redis_client: Redis) -> None:
    """Nothing to revive: a delivered delivery says so, an unknown one is None."""
    # given
    create(redis_client, new(1))
    deliveries.claim(redis_client, ids=["msg_1_sub1"], now_ms=NOW, lease_ms=LEASE)
    deliveries.finish(
        redis_client,
        results=[Finish("msg_1_sub1", DeliveryState.DELIVERED, attempt(200, "delivered"))],
        now_ms=NOW,
        ttl_s=0,
    )
    # when / then
    assert deliveries.revive(redis_client, delivery_id="msg_1_sub1", now_ms=NOW, due_at_ms=NOW) == (
        "delivered"
    )
    assert deliveries.revive(redis_client, delivery_id="nope", now_ms=NOW, due_at_ms=NOW) is None
    assert redis_client.zscore(keys.DUE, "msg_1_sub1") is None


def test_list_deliveries_newest_first_filtered_and_limited(redis_client: Redis) -> None:
    """A subscription's deliveries, newest first, by state, at most `limit`, with attempts."""
    # given
    for n in range(1, 5):
        create(redis_client, new(n), now=NOW + n)
    create(redis_client, new(9, sub_id="other"))
    deliveries.claim(redis_client, ids=["msg_2_sub1"], now_ms=NOW + 10, lease_ms=LEASE)
    deliveries.finish(
        redis_client,
        results=[Finish("msg_2_sub1", DeliveryState.DELIVERED, attempt(200, "delivered"))],
        now_ms=NOW + 10,
        ttl_s=0,
    )
    # when
    everything = deliveries.list_deliveries(redis_client, sub_id="sub1")
    pending = deliveries.list_deliveries(
        redis_client, sub_id="sub1", state=DeliveryState.PENDING, limit=2
    )
    delivered = deliveries.list_deliveries(
        redis_client, sub_id="sub1", state=DeliveryState.DELIVERED
    )
    # then
    assert [d.id for d, _ in everything] == [f"msg_{n}_sub1" for n in (4, 3, 2, 1)]
    assert [d.id for d, _ in pending] == ["msg_4_sub1", "msg_3_sub1"]
    [(delivery, attempts)] = delivered
    assert delivery.id == "msg_2_sub1" and [a.status_code for a in attempts] == [200]


def test_expired_claims_are_dropped_and_old_dead_letters_trimmed(redis_client: Redis) -> None:
    """The sweep's housekeeping: ended leases and dead letters past retention are forgotten."""
    # given
    redis_client.zadd(keys.CLAIMS, {"old": NOW - 1, "held": NOW + 1})
    redis_client.zadd(keys.DEAD, {"ancient": NOW - 10, "recent": NOW})
    # when
    dropped = deliveries.drop_expired_claims(redis_client, now_ms=NOW)
    trimmed = deliveries.trim_dead(redis_client, older_than_ms=NOW - 5)
    # then
    assert (dropped, trimmed) == (1, 1)
    assert redis_client.zrange(keys.CLAIMS, 0, -1) == ["held"]
    assert redis_client.zrange(keys.DEAD, 0, -1) == ["recent"]
