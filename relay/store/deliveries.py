"""Deliveries: one (event, subscription) webhook, its state, its attempts, and the due queue.

States: `pending` (waiting for its first attempt), `failed` (an attempt failed, the next one
is scheduled), and the terminal `delivered`, `dead` (retries exhausted, or refused for
good), `gone` (the receiver answered 410 and the subscription was turned off) and
`skipped` (the subscription is off or deleted). Durable truth lives here, never in a
worker: relay:due holds every delivery still to attempt, relay:claims the leases of those
being attempted, and each subscription's waiting set the deliveries that were due while it
had no free send slot (`Limits.max_in_flight`) or while its circuit was open. See
relay/store/lua/ (create_deliveries, claim, finish, wake, take_due, revive) for the atomic
transitions.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TypeVar

from relay.store import keys, scripts
from relay.store.client import Redis, translate_errors

ATTEMPTS_KEPT = 50  # per delivery; the schedule has fewer steps, revivals add more
RECENT_PER_SUBSCRIPTION = 10_000  # ids kept in relay:sub:{id}:deliveries for listing

_T = TypeVar("_T")


class DeliveryState(StrEnum):
    PENDING = "pending"
    FAILED = "failed"
    DELIVERED = "delivered"
    DEAD = "dead"
    GONE = "gone"
    SKIPPED = "skipped"


TERMINAL_STATES = frozenset(
    {DeliveryState.DELIVERED, DeliveryState.DEAD, DeliveryState.GONE, DeliveryState.SKIPPED}
)


class DeliveryKind(StrEnum):
    EVENT = "event"  # created by fan-out
    REPLAY = "replay"  # an operator re-sent a recorded event
    TEST = "test"  # a test event, tried once


@dataclass(frozen=True)
class NewDelivery:
    id: str
    kind: DeliveryKind
    sub_id: str
    event_id: int | None
    # in an ordered subscription: the key (a flag, a project, the subscription) whose
    # deliveries go one at a time, in event order; '' when unordered
    order_key: str = ""


@dataclass(frozen=True)
class Delivery:
    id: str
    kind: DeliveryKind
    sub_id: str
    event_id: int | None
    state: DeliveryState
    attempts: int
    created_at: int
    updated_at: int
    next_attempt_at: int | None
    delivered_at: int | None
    reason: str


@dataclass(frozen=True)
class Attempt:
    """One POST: when, how it went, and the first KiB of the receiver's answer."""

    at: int
    status_code: int | None
    duration_ms: int
    error: str | None
    response_body: str
    outcome: str


class Reach(StrEnum):
    """Whether an attempt reached the receiver: what the subscription's circuit counts."""

    ANSWERED = "ok"  # an HTTP answer, whatever its status
    UNREACHABLE = "down"  # timed out, or the connection failed
    NONE = ""  # no attempt, a refused destination, or a test delivery: not counted


@dataclass(frozen=True)
class Finish:
    """What an attempt (or a decision not to attempt) does to a delivery.

    `sub_id` (when known) frees the delivery's send slot of its subscription and lets
    `reach` count for the subscription's circuit.
    """

    delivery_id: str
    state: DeliveryState
    attempt: Attempt | None = None
    next_attempt_at: int | None = None
    reason: str = ""
    sub_id: str = ""
    reach: Reach = Reach.NONE


@dataclass(frozen=True)
class Limits:
    """What one subscription may hold, enforced by the claim and finish scripts.

    At most `max_in_flight` of its deliveries hold a send slot (claimed, or handed a freed
    slot) at once, across every worker. `circuit_failures` unreachable attempts in a row
    open its circuit: nothing is sent until one probe, `circuit_cooldown_ms` later (twice
    as long after each failed probe, up to `circuit_cooldown_max_ms`), reaches it.
    """

    max_in_flight: int
    lease_ms: int
    circuit_failures: int
    circuit_cooldown_ms: int
    circuit_cooldown_max_ms: int


@dataclass(frozen=True)
class Settled:
    """What a finish changed: states, freed slots handed on, circuits opened or closed."""

    changed: list[str]
    promoted: list[str]  # waiting deliveries handed a freed slot: attempt them now
    opened: list[str]  # subscriptions whose circuit opened
    closed: list[str]  # subscriptions whose circuit closed


def event_delivery_id(*, event_id: int, sub_id: str, replay: str | None = None) -> str:
    """`msg_<event>_<sub>`: the same on every retry; a replay adds its own suffix."""
    base = f"msg_{event_id}_{sub_id}"
    return f"{base}_r{replay}" if replay else base


def create_deliveries(
    client: Redis, *, deliveries: Sequence[NewDelivery], now_ms: int, due_at_ms: int
) -> list[str]:
    """Create deliveries that do not exist yet (idempotent); ids to enqueue now.

    `due_at_ms` is when the pump picks them up if the caller's enqueue is lost.
    """
    created: list[str] = []
    for chunk in _chunks(deliveries, 500):
        created.extend(_create_chunk(client, chunk, now_ms=now_ms, due_at_ms=due_at_ms))
    return created


def _create_chunk(
    client: Redis, chunk: Sequence[NewDelivery], *, now_ms: int, due_at_ms: int
) -> list[str]:
    return scripts.create_deliveries(
        client,
        deliveries=[
            scripts.NewDeliveryArgs(
                item.id, item.kind.value, item.sub_id, item.event_id, item.order_key
            )
            for item in chunk
        ],
        now_ms=now_ms,
        due_at_ms=due_at_ms,
        kept_per_subscription=RECENT_PER_SUBSCRIPTION,
    )


def claim(
    client: Redis, *, ids: Sequence[str], now_ms: int, lease_ms: int, limits: Limits | None = None
) -> list[Delivery]:
    """Claim the deliveries that are due and unclaimed, with a lease; skips all others.

    With `limits`, a delivery whose subscription has no free slot or an open circuit is not
    claimed: it moves to the subscription's waiting set (no attempt is counted) until a
    slot frees (`settle` hands it on) or the pump wakes it (`wake`).
    """
    if not ids:
        return []
    if limits is None:
        claimed, _ = _claim(client, ids, {}, now_ms=now_ms, lease_ms=lease_ms, cap=0)
        return claimed
    named = {delivery_id: subscription_in_id(delivery_id) for delivery_id in ids}
    cap = limits.max_in_flight
    claimed, unknown = _claim(client, ids, named, now_ms=now_ms, lease_ms=lease_ms, cap=cap)
    if unknown:  # ids not made by event_delivery_id (or a test delivery's): look them up
        found = subscriptions_of(client, ids=unknown)
        more, _ = _claim(client, unknown, found, now_ms=now_ms, lease_ms=lease_ms, cap=cap)
        claimed += more
    return claimed


def subscription_in_id(delivery_id: str) -> str:
    """The subscription named in a delivery id, `msg_<event or test>_<subscription>[_...]`
    (`event_delivery_id`, relay/deliveries/replay.py); the claim checks it against the record."""
    parts = delivery_id.split("_", 3)
    return parts[2] if len(parts) >= 3 and parts[0] == "msg" else ""


def _claim(
    client: Redis,
    ids: Sequence[str],
    subs: Mapping[str, str],
    *,
    now_ms: int,
    lease_ms: int,
    cap: int,
) -> tuple[list[Delivery], list[str]]:
    flat, unknown = scripts.claim(
        client,
        deliveries=[(delivery_id, subs.get(delivery_id, "")) for delivery_id in ids],
        now_ms=now_ms,
        lease_until_ms=now_ms + lease_ms,
        cap=cap,
    )
    claimed = [_delivery(flat[i], _pairs(flat[i + 1])) for i in range(0, len(flat), 2)]
    return claimed, unknown


def subscriptions_of(client: Redis, *, ids: Sequence[str]) -> dict[str, str]:
    """The subscription of each delivery (deliveries without a record are left out)."""
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for delivery_id in ids:
            pipe.hget(keys.delivery(delivery_id), "sub")
        found: list[str | None] = pipe.execute()
    return {delivery_id: sub for delivery_id, sub in zip(ids, found, strict=True) if sub}


def finish(client: Redis, *, results: Sequence[Finish], now_ms: int, ttl_s: int) -> list[str]:
    """Record attempts and move deliveries on; terminal ones expire after `ttl_s`.

    A delivery already terminal (another worker finished it) only gains the attempt.
    Returns the ids whose state changed.
    """
    return settle(client, results=results, now_ms=now_ms, ttl_s=ttl_s).changed


def settle(
    client: Redis,
    *,
    results: Sequence[Finish],
    now_ms: int,
    ttl_s: int,
    limits: Limits | None = None,
) -> Settled:
    """`finish`, and with `limits`: free the deliveries' slots, count their reach for the
    circuits, and hand each freed slot to the oldest waiting delivery of its subscription."""
    if not results:
        return Settled([], [], [], [])
    changed, promoted, opened, closed = scripts.finish(
        client,
        results=[_finish_args(result, limited=limits is not None) for result in results],
        now_ms=now_ms,
        attempts_kept=ATTEMPTS_KEPT,
        ttl_s=ttl_s,
        slots=_slot_args(limits, now_ms),
    )
    return Settled(changed, promoted, opened, closed)


def _finish_args(result: Finish, *, limited: bool) -> scripts.FinishArgs:
    """Without limits no slot is freed and no reach counted: the subscription is left out."""
    return scripts.FinishArgs(
        delivery_id=result.delivery_id,
        state=result.state.value,
        next_at_ms=result.next_attempt_at,
        reason=result.reason,
        attempt_json="" if result.attempt is None else json.dumps(asdict(result.attempt)),
        sub_id=result.sub_id if limited else "",
        reach=result.reach.value,
    )


def release_fanned_out(client: Redis, *, now_ms: int) -> list[str]:
    """Ordered heads that waited for earlier events' fan-out and may go now: due now, to
    enqueue (claim.lua holds a head while an earlier event is still in the outbox)."""
    return scripts.release_fanned_out(client, now_ms=now_ms)


def take_due(client: Redis, *, now_ms: int, requeue_ms: int, limit: int) -> list[str]:
    """Deliveries due now; each is due again `requeue_ms` later unless a worker claims it."""
    return scripts.take_due(client, now_ms=now_ms, requeue_at_ms=now_ms + requeue_ms, limit=limit)


# waiting deliveries of a subscription turned off or deleted, released per pump run
RELEASE_PER_RUN = 1000


def wake(client: Redis, *, now_ms: int, limits: Limits, live: Collection[str]) -> list[str]:
    """Waiting deliveries to enqueue now: as many as each subscription has free slots (a
    worker that died with a slot frees it when its lease ends), one probe of a circuit
    whose cool-down is over, and those of subscriptions not in `live` (the ones on: the
    claims of the others skip them). Forgets circuits closed by other means."""
    with translate_errors():
        subs: set[str] = client.smembers(keys.WAITING)  # type: ignore[assignment]
        subs.update(client.zrange(keys.CIRCUITS, 0, -1))  # type: ignore[arg-type]
    if not subs:
        return []
    return scripts.wake(
        client,
        subscriptions=[(sub_id, sub_id not in live) for sub_id in sorted(subs)],
        now_ms=now_ms,
        lease_until_ms=now_ms + limits.lease_ms,
        cap=limits.max_in_flight,
        release_max=RELEASE_PER_RUN,
    )


def _slot_args(limits: Limits | None, now_ms: int) -> scripts.SlotArgs:
    if limits is None:
        return scripts.SlotArgs(0, 0, 0, 0, 0)
    return scripts.SlotArgs(
        cap=limits.max_in_flight,
        lease_until_ms=now_ms + limits.lease_ms,
        failures=limits.circuit_failures,
        cooldown_ms=limits.circuit_cooldown_ms,
        cooldown_max_ms=limits.circuit_cooldown_max_ms,
    )


def drop_expired_claims(client: Redis, *, now_ms: int) -> int:
    """Forget leases that ended (their deliveries are already due again); how many."""
    with translate_errors():
        return int(client.zremrangebyscore(keys.CLAIMS, "-inf", now_ms))


def trim_dead(client: Redis, *, older_than_ms: int) -> int:
    """Forget dead letters that died before `older_than_ms` (their records have expired)."""
    with translate_errors():
        return int(client.zremrangebyscore(keys.DEAD, "-inf", older_than_ms))


def revive(client: Redis, *, delivery_id: str, now_ms: int, due_at_ms: int) -> str | None:
    """Make a delivery pending again with no attempts counted; its previous state.

    None when it does not exist; a delivered one is left alone (`delivered` is returned).
    """
    return scripts.revive(client, delivery_id=delivery_id, now_ms=now_ms, due_at_ms=due_at_ms)


def get_delivery(client: Redis, *, delivery_id: str) -> Delivery | None:
    with translate_errors():
        fields: dict[str, str] = client.hgetall(keys.delivery(delivery_id))  # type: ignore[assignment]
    return _delivery(delivery_id, fields) if fields else None


def get_attempts(client: Redis, *, delivery_id: str) -> list[Attempt]:
    """Attempts of a delivery, oldest first."""
    with translate_errors():
        raw: list[str] = client.lrange(keys.delivery_attempts(delivery_id), 0, -1)  # type: ignore[assignment]
    return [attempt_from(item) for item in raw]


def list_deliveries(
    client: Redis, *, sub_id: str, state: DeliveryState | None = None, limit: int = 50
) -> list[tuple[Delivery, list[Attempt]]]:
    """A subscription's most recent deliveries (newest first) with their attempts."""
    found: list[tuple[Delivery, list[Attempt]]] = []
    with translate_errors():
        ids: list[str] = client.zrevrange(keys.subscription_deliveries(sub_id), 0, -1)  # type: ignore[assignment]
        for chunk in _chunks(ids, 200):
            for delivery, attempts in _load(client, chunk):
                if state is None or delivery.state is state:
                    found.append((delivery, attempts))
                if len(found) >= limit:
                    return found
    return found


def delivery_count(client: Redis, *, due: bool = True) -> int:
    """How many deliveries are waiting (due set) or dead (dead set)."""
    with translate_errors():
        return int(client.zcard(keys.DUE if due else keys.DEAD))


def _load(client: Redis, ids: Sequence[str]) -> Iterator[tuple[Delivery, list[Attempt]]]:
    pipe = client.pipeline(transaction=False)
    for delivery_id in ids:
        pipe.hgetall(keys.delivery(delivery_id))
        pipe.lrange(keys.delivery_attempts(delivery_id), 0, -1)
    replies = pipe.execute()
    for index, delivery_id in enumerate(ids):
        fields, attempts = replies[2 * index], replies[2 * index + 1]
        if fields:  # expired records are skipped
            yield _delivery(delivery_id, fields), [attempt_from(a) for a in attempts]


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def _optional_int(text: str | None) -> int | None:
    return int(text) if text else None


def _delivery(delivery_id: str, fields: Mapping[str, str]) -> Delivery:
    return Delivery(
        id=delivery_id,
        kind=DeliveryKind(fields.get("kind", DeliveryKind.EVENT.value)),
        sub_id=fields.get("sub", ""),
        event_id=_optional_int(fields.get("event")),
        state=DeliveryState(fields.get("state", DeliveryState.PENDING.value)),
        attempts=int(fields.get("attempts", 0)),
        created_at=int(fields.get("created", 0)),
        updated_at=int(fields.get("updated", 0)),
        next_attempt_at=(
            None if fields.get("state") in TERMINAL_STATES else _optional_int(fields.get("next"))
        ),
        delivered_at=_optional_int(fields.get("delivered")),
        reason=fields.get("reason", ""),
    )


def attempt_from(raw: str) -> Attempt:
    """An attempt as stored (one JSON item of a delivery's attempts list)."""
    data = json.loads(raw)
    return Attempt(
        at=int(data["at"]),
        status_code=data.get("status_code"),
        duration_ms=int(data.get("duration_ms", 0)),
        error=data.get("error"),
        response_body=data.get("response_body", ""),
        outcome=data.get("outcome", ""),
    )


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
