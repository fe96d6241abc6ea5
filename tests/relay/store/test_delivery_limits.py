"""Per-subscription limits in the delivery store (real Redis): the in-flight cap, waiting
deliveries handed freed slots, the circuit breaker, and the pump's wake-up."""

from __future__ import annotations

from dataclasses import replace

from relay import clock
from relay.store import deliveries, keys, subscription_status, subscriptions
from relay.store.client import Redis
from relay.store.deliveries import (
    DeliveryKind,
    DeliveryState,
    Finish,
    Limits,
    NewDelivery,
    Reach,
)
from tests.support import subscribe

NOW = 1_800_000_000_000
LEASE = 60_000
LIMITS = Limits(
    max_in_flight=2,
    lease_ms=LEASE,
    circuit_failures=3,
    circuit_cooldown_ms=10_000,
    circuit_cooldown_max_ms=25_000,
)


def pending(client: Redis, sub_id: str, *events: int) -> list[str]:
    items = [
        NewDelivery(
            deliveries.event_delivery_id(event_id=e, sub_id=sub_id), DeliveryKind.EVENT, sub_id, e
        )
        for e in events
    ]
    return deliveries.create_deliveries(client, deliveries=items, now_ms=NOW, due_at_ms=NOW + LEASE)


def claim(client: Redis, ids: list[str], at: int = NOW) -> list[str]:
    claimed = deliveries.claim(client, ids=ids, now_ms=at, lease_ms=LEASE, limits=LIMITS)
    return [d.id for d in claimed]


def settle(
    client: Redis, sub_id: str, ids: list[str], reach: Reach, at: int = NOW
) -> deliveries.Settled:
    state = DeliveryState.DELIVERED if reach is Reach.ANSWERED else DeliveryState.FAILED
    later = None if state is DeliveryState.DELIVERED else at + 1_000
    results = [Finish(i, state, next_attempt_at=later, sub_id=sub_id, reach=reach) for i in ids]
    return deliveries.settle(client, results=results, now_ms=at, ttl_s=60, limits=LIMITS)


def waiting(client: Redis, sub_id: str) -> list[str]:
    found: list[str] = client.zrange(keys.subscription_waiting(sub_id), 0, -1)  # type: ignore[assignment]
    return found


def test_a_subscription_holds_at_most_its_cap_and_the_rest_waits(redis_client: Redis) -> None:
    """Cap 2: two of five are claimed, three wait out of the due set, with no attempt counted;
    another subscription's delivery is not held back."""
    # given
    busy, other = subscribe(redis_client), subscribe(redis_client)
    ids = pending(redis_client, busy, 1, 2, 3, 4, 5)
    [other_id] = pending(redis_client, other, 1)
    # when
    claimed = claim(redis_client, [*ids, other_id])
    # then
    assert claimed == [ids[0], ids[1], other_id]
    assert waiting(redis_client, busy) == ids[2:]
    assert redis_client.zmscore(keys.DUE, ids[2:]) == [None, None, None]
    assert redis_client.smembers(keys.WAITING) == {busy}
    assert all(deliveries.get_delivery(redis_client, delivery_id=i).attempts == 0 for i in ids)  # type: ignore[union-attr]


def test_a_freed_slot_goes_to_the_oldest_waiting_delivery_and_is_kept_for_it(
    redis_client: Redis,
) -> None:
    """Finishing one hands its slot on: the promoted delivery claims it, a newcomer waits."""
    # given
    sub_id = subscribe(redis_client)
    ids = pending(redis_client, sub_id, 1, 2, 3, 4)
    claim(redis_client, ids)
    [newcomer] = pending(redis_client, sub_id, 5)
    # when
    settled = settle(redis_client, sub_id, [ids[0]], Reach.ANSWERED)
    # then
    assert settled.promoted == [ids[2]]
    assert claim(redis_client, [newcomer, ids[2]]) == [ids[2]]
    assert waiting(redis_client, sub_id) == [ids[3], newcomer]


def test_ids_that_do_not_name_their_subscription_are_looked_up(redis_client: Redis) -> None:
    """The claim takes the subscription from the id; an id in another form is read first."""
    # given
    sub_id = subscribe(redis_client)
    odd = [f"custom-{n}" for n in range(3)]
    items = [NewDelivery(i, DeliveryKind.REPLAY, sub_id, n) for n, i in enumerate(odd)]
    deliveries.create_deliveries(redis_client, deliveries=items, now_ms=NOW, due_at_ms=NOW)
    # when
    claimed = claim(redis_client, odd)
    # then
    assert deliveries.subscription_in_id(f"msg_7_{sub_id}_rx") == sub_id
    assert claimed == odd[:2] and waiting(redis_client, sub_id) == odd[2:]


def test_the_circuit_opens_after_failures_in_a_row_and_holds_everything_back(
    redis_client: Redis,
) -> None:
    """Three unreachable attempts open it: due deliveries wait, `_status` says so."""
    # given
    sub_id = subscribe(redis_client)
    first, second, third, fourth = pending(redis_client, sub_id, 1, 2, 3, 4)
    claim(redis_client, [first, second])
    settle(redis_client, sub_id, [first], Reach.UNREACHABLE)
    claim(redis_client, [third])
    # when
    settled = settle(redis_client, sub_id, [second, third], Reach.UNREACHABLE, at=NOW + 1)
    # then
    assert settled.opened == [sub_id] and settled.promoted == []
    assert claim(redis_client, [fourth], at=NOW + 2) == []
    assert waiting(redis_client, sub_id) == [fourth]
    status = subscription_status.get_status(redis_client, sub_id=sub_id)
    assert status["circuitState"] == "open"
    assert (status["circuitOpenedAt"], status["circuitRetryAt"]) == (NOW + 1, NOW + 10_001)
    assert redis_client.zscore(keys.CIRCUITS, sub_id) == NOW + 10_001


def test_an_answer_ends_the_run_of_failures(redis_client: Redis) -> None:
    """Unreachable, answered (a 500 counts), unreachable twice: still closed."""
    sub_id = subscribe(redis_client)
    ids = pending(redis_client, sub_id, 1, 2, 3, 4)
    for n, reach in enumerate(
        [Reach.UNREACHABLE, Reach.ANSWERED, Reach.UNREACHABLE, Reach.UNREACHABLE]
    ):
        claim(redis_client, [ids[n]])
        assert settle(redis_client, sub_id, [ids[n]], reach).opened == []
    assert "circuitState" not in subscription_status.get_status(redis_client, sub_id=sub_id)


def open_circuit(client: Redis, sub_id: str) -> list[str]:
    """Open the circuit of `sub_id` at NOW (retry at NOW + 10 s); three deliveries wait."""
    failing = pending(client, sub_id, 101, 102)
    claim(client, failing)
    settle(client, sub_id, failing, Reach.UNREACHABLE)
    failing = pending(client, sub_id, 103)
    claim(client, failing)
    assert settle(client, sub_id, failing, Reach.UNREACHABLE).opened == [sub_id]
    held = pending(client, sub_id, 1, 2, 3)
    assert claim(client, held) == []
    return held


def test_one_probe_after_the_cool_down_and_a_failed_probe_waits_twice_as_long(
    redis_client: Redis,
) -> None:
    """Before the cool-down nothing goes; after it one probe; a failed probe doubles it."""
    # given
    sub_id = subscribe(redis_client)
    held = open_circuit(redis_client, sub_id)
    woken = deliveries.wake(redis_client, now_ms=NOW + 5_000, limits=LIMITS, live={sub_id})
    assert woken == []
    # when: the cool-down is over
    woken = deliveries.wake(redis_client, now_ms=NOW + 10_000, limits=LIMITS, live={sub_id})
    probe = claim(redis_client, [*woken, held[1]], at=NOW + 10_000)
    # then
    assert woken == [held[0]] and probe == [held[0]]
    status = subscription_status.get_status(redis_client, sub_id=sub_id)
    assert status["circuitState"] == "half-open"
    # when: the probe times out
    settle(redis_client, sub_id, probe, Reach.UNREACHABLE, at=NOW + 11_000)
    # then
    status = subscription_status.get_status(redis_client, sub_id=sub_id)
    assert (status["circuitState"], status["circuitRetryAt"]) == ("open", NOW + 31_000)


def test_an_answered_probe_closes_the_circuit_and_the_waiting_deliveries_go(
    redis_client: Redis,
) -> None:
    """The probe's answer closes it: the freed slots go to the waiting deliveries at once."""
    # given
    sub_id = subscribe(redis_client)
    held = open_circuit(redis_client, sub_id)
    deliveries.wake(redis_client, now_ms=NOW + 10_000, limits=LIMITS, live={sub_id})
    probe = claim(redis_client, [held[0]], at=NOW + 10_000)
    # when
    settled = settle(redis_client, sub_id, probe, Reach.ANSWERED, at=NOW + 10_100)
    # then
    assert settled.closed == [sub_id] and settled.promoted == held[1:]
    assert "circuitState" not in subscription_status.get_status(redis_client, sub_id=sub_id)
    assert redis_client.zcard(keys.CIRCUITS) == 0


def test_the_pump_wakes_slots_of_ended_leases_and_releases_subscriptions_turned_off(
    redis_client: Redis,
) -> None:
    """A worker that died with slots frees them when the leases end; an off subscription's
    waiting deliveries are all handed out (their claims skip them)."""
    # given
    alive, off = subscribe(redis_client), subscribe(redis_client)
    alive_ids = pending(redis_client, alive, 1, 2, 3)
    off_ids = pending(redis_client, off, 1, 2, 3)
    claim(redis_client, [*alive_ids, *off_ids])
    subscriptions.turn_off(redis_client, sub_id=off, reason="test")
    # when
    early = deliveries.wake(redis_client, now_ms=NOW + 1, limits=LIMITS, live={alive})
    late = deliveries.wake(redis_client, now_ms=NOW + LEASE, limits=LIMITS, live={alive})
    # then
    assert early == [off_ids[2]] and late == [alive_ids[2]]
    assert redis_client.smembers(keys.WAITING) == set()


def test_turning_a_subscription_back_on_closes_its_circuit(redis_client: Redis) -> None:
    """An admin turning it off and on gives it a fresh start, circuit included."""
    # given
    sub_id = subscribe(redis_client)
    open_circuit(redis_client, sub_id)
    subscriptions.turn_off(redis_client, sub_id=sub_id, reason="test")
    # when
    subscriptions.update_subscription(
        redis_client, sub_id=sub_id, change=lambda record: replace(record, on=True)
    )
    # then
    assert "circuitState" not in subscription_status.get_status(redis_client, sub_id=sub_id)
    assert redis_client.zcard(keys.CIRCUITS) == 0


def test_a_subscription_turned_off_with_its_circuit_open_drains_in_one_wake(
    redis_client: Redis,
) -> None:
    """Off ends the circuit: the waiting deliveries are claimed as far as the cap allows
    (for the worker to skip them), not one "probe" per pump beat (the normal end of
    RELAY_DISABLE_AFTER)."""
    # given
    sub_id = subscribe(redis_client)
    held = open_circuit(redis_client, sub_id)
    # when
    subscriptions.turn_off(redis_client, sub_id=sub_id, reason="test")
    woken = deliveries.wake(redis_client, now_ms=NOW + 1, limits=LIMITS, live=set())
    # then
    assert sorted(woken) == sorted(held)
    assert len(claim(redis_client, woken, at=NOW + 1)) == LIMITS.max_in_flight
    assert "circuitState" not in subscription_status.get_status(redis_client, sub_id=sub_id)
    assert redis_client.zcard(keys.CIRCUITS) == 0


def test_a_released_probe_is_reserved_so_the_next_wake_releases_no_other(
    redis_client: Redis,
) -> None:
    """Two pump runs after the cool-down, before the probe is claimed: one probe, not two."""
    # given
    sub_id = subscribe(redis_client)
    held = open_circuit(redis_client, sub_id)
    # when
    first = deliveries.wake(redis_client, now_ms=NOW + 10_000, limits=LIMITS, live={sub_id})
    second = deliveries.wake(redis_client, now_ms=NOW + 10_500, limits=LIMITS, live={sub_id})
    # then
    assert first == [held[0]] and second == []
    assert claim(redis_client, [held[0]], at=NOW + 10_600) == [held[0]]


def test_a_probe_that_was_not_counted_waits_a_cool_down_before_the_next(
    redis_client: Redis,
) -> None:
    """A probe ending with no counted outcome (skipped, a protocol error) does not let the
    next probe go at the next pump beat: the next one waits the current cool-down."""
    # given
    sub_id = subscribe(redis_client)
    held = open_circuit(redis_client, sub_id)
    deliveries.wake(redis_client, now_ms=NOW + 10_000, limits=LIMITS, live={sub_id})
    probe = claim(redis_client, [held[0]], at=NOW + 10_000)
    # when
    settle(redis_client, sub_id, probe, Reach.NONE, at=NOW + 10_100)
    # then
    status = subscription_status.get_status(redis_client, sub_id=sub_id)
    assert (status["circuitState"], status["circuitRetryAt"]) == ("open", NOW + 20_100)
    assert deliveries.wake(redis_client, now_ms=NOW + 11_000, limits=LIMITS, live={sub_id}) == []


def test_a_paused_subscription_holds_every_delivery_back_until_the_pause_ends(
    redis_client: Redis,
) -> None:
    """Paused for 3 s: nothing is claimed, freed slots and the pump hand nothing out, no
    attempt is counted; once the pause is over the waiting deliveries go, oldest first."""
    # given: one delivery in flight, then the receiver asks for 3 s
    sub_id, other = subscribe(redis_client), subscribe(redis_client)
    ids = pending(redis_client, sub_id, 1, 2, 3)
    [other_id] = pending(redis_client, other, 1)
    assert claim(redis_client, ids[:1]) == ids[:1]
    reason = "receiver answered 429 with Retry-After 3 s"
    assert subscription_status.pause(
        redis_client, sub_id=sub_id, until_ms=NOW + 3_000, reason=reason, at_ms=NOW
    )
    # when: the others come due, the one in flight finishes, the pump runs
    claimed = claim(redis_client, [*ids[1:], other_id], at=NOW + 1)
    settled = settle(redis_client, sub_id, ids[:1], Reach.ANSWERED, at=NOW + 2)
    woken = deliveries.wake(redis_client, now_ms=NOW + 2_999, limits=LIMITS, live={sub_id})
    # then: only the other subscription's delivery went
    assert claimed == [other_id] and settled.promoted == [] and woken == []
    assert waiting(redis_client, sub_id) == ids[1:]
    assert all(deliveries.get_delivery(redis_client, delivery_id=i).attempts == 0 for i in ids)  # type: ignore[union-attr]
    # when: the pause is over
    after = deliveries.wake(redis_client, now_ms=NOW + 3_000, limits=LIMITS, live={sub_id})
    # then
    assert after == ids[1:]
    assert claim(redis_client, after, at=NOW + 3_001) == ids[1:]


def test_a_pause_grows_but_never_shrinks_and_outlives_no_subscription(redis_client: Redis) -> None:
    """A later Retry-After extends the pause (1: grew), an earlier one leaves it (0); a
    pause after one ended begins again (2); a deleted subscription's status is not
    recreated by a late pause."""
    sub_id = subscribe(redis_client)
    began = subscription_status.pause(
        redis_client, sub_id=sub_id, until_ms=NOW + 5_000, reason="a", at_ms=NOW
    )
    shorter = subscription_status.pause(
        redis_client, sub_id=sub_id, until_ms=NOW + 1_000, reason="b", at_ms=NOW
    )
    longer = subscription_status.pause(
        redis_client, sub_id=sub_id, until_ms=NOW + 9_000, reason="c", at_ms=NOW
    )
    assert (began, shorter, longer) == (2, 0, 1)
    fields = redis_client.hgetall(keys.subscription_status(sub_id))
    assert fields["pausedUntil"] == str(NOW + 9_000) and fields["pausedReason"] == "c"
    again = subscription_status.pause(
        redis_client, sub_id=sub_id, until_ms=NOW + 20_000, reason="e", at_ms=NOW + 10_000
    )
    assert again == 2
    subscriptions.delete_subscription(redis_client, sub_id=sub_id)
    assert not subscription_status.pause(
        redis_client, sub_id=sub_id, until_ms=NOW + 10**7, reason="d", at_ms=NOW
    )
    assert redis_client.exists(keys.subscription_status(sub_id)) == 0


def test_status_shows_a_pause_only_while_it_lasts(redis_client: Redis) -> None:
    """`_status` has pausedUntil and pausedReason while the pause lasts, neither after."""
    sub_id, ended = subscribe(redis_client), subscribe(redis_client)
    now = clock.now_ms()
    subscription_status.pause(
        redis_client, sub_id=sub_id, until_ms=now + 60_000, reason="429", at_ms=now
    )
    subscription_status.pause(
        redis_client, sub_id=ended, until_ms=now - 1, reason="429", at_ms=now - 9
    )
    status = subscription_status.get_status(redis_client, sub_id=sub_id)
    assert status["pausedUntil"] == now + 60_000 and status["pausedReason"] == "429"
    assert "pausedUntil" not in subscription_status.get_status(redis_client, sub_id=ended)


def test_a_subscription_holds_at_most_its_own_max_in_flight(redis_client: Redis) -> None:
    """maxInFlight 1 holds one where the default allows two; a PATCH to 3 takes effect at
    the next hand-off, and back to the default when removed."""
    # given
    narrow = subscribe(redis_client, delivery={"maxInFlight": 1})
    ids = pending(redis_client, narrow, 1, 2, 3, 4)
    # when
    claimed = claim(redis_client, ids)
    # then
    assert claimed == ids[:1] and waiting(redis_client, narrow) == ids[1:]
    # when: raised to 3
    subscriptions.update_subscription(
        redis_client, sub_id=narrow, change=lambda r: replace(r, delivery={"maxInFlight": 3})
    )
    woken = deliveries.wake(redis_client, now_ms=NOW + 1, limits=LIMITS, live={narrow})
    # then: two more slots (one is still held)
    assert woken == ids[1:3]
    # when: removed, the default (2) holds again
    subscriptions.update_subscription(
        redis_client, sub_id=narrow, change=lambda r: replace(r, delivery={})
    )
    assert deliveries.wake(redis_client, now_ms=NOW + 2, limits=LIMITS, live={narrow}) == []


def test_a_subscription_sends_at_most_its_max_per_second(redis_client: Redis) -> None:
    """maxPerSecond 2: two go at once (one second's worth), then one each half second;
    a delivery refused for want of a token waits without an attempt and gives its slot back."""
    # given
    wide = replace(LIMITS, max_in_flight=10)
    paced = subscribe(redis_client, delivery={"maxPerSecond": 2})
    ids = pending(redis_client, paced, 1, 2, 3, 4, 5)

    def take(at: int) -> list[str]:
        due = deliveries.wake(redis_client, now_ms=at, limits=wide, live={paced})
        found = deliveries.claim(redis_client, ids=due, now_ms=at, lease_ms=LEASE, limits=wide)
        return [d.id for d in found]

    # when / then
    first = [
        d.id
        for d in deliveries.claim(redis_client, ids=ids, now_ms=NOW, lease_ms=LEASE, limits=wide)
    ]
    assert first == ids[:2] and waiting(redis_client, paced) == ids[2:]
    assert take(NOW + 100) == []
    assert redis_client.zcard(keys.subscription_inflight(paced)) == 2  # no slot kept
    assert take(NOW + 500) == ids[2:3]
    assert take(NOW + 1_000) == ids[3:4]
    assert all(deliveries.get_delivery(redis_client, delivery_id=i).attempts == 0 for i in ids)  # type: ignore[union-attr]
