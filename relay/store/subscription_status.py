"""Delivery health of each subscription: the counters and last errors shown as `_status`.

Workers write it (`record_success`, `record_failure`); the API reads it (`get_status`).
`failing_since` is when the current run of failures began; a success clears it, and the
workers turn a subscription off once it has been failing for `DISABLE_AFTER`.

The same hash holds the subscription's circuit breaker, written by the delivery scripts
(relay/store/lua/claim.lua, finish.lua, wake.lua): `consecutiveFailures` (unreachable
attempts in a row) and, while the circuit is open, `circuit`, `circuitOpenedAt`,
`circuitRetryAt` (when the next probe may go), `circuitCooldown` and the probe in flight
(`circuitProbe`, `circuitProbeUntil`). `_status` shows `circuitState` (`open`, or
`half-open` while a probe is in flight) with `circuitOpenedAt` and `circuitRetryAt`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis.client import Pipeline

from relay.clock import now_ms
from relay.store import keys, scripts
from relay.store.client import Redis, translate_errors

MAX_ERRORS = 10
# a receiver's error page can be large; the status keeps enough of it to diagnose
MAX_RESPONSE_BODY = 4096

_INT_FIELDS = (
    "successCount",
    "lastSuccess",
    "errorCount",
    "lastError",
    "failingSince",
    "disabledAt",
    "circuitOpenedAt",
    "circuitRetryAt",
)
# the circuit's fields, forgotten when it closes or when an admin turns the subscription on
# (finish.lua names them too: tests/relay/store/test_scripts.py keeps the two the same)
CIRCUIT_FIELDS = (
    "consecutiveFailures",
    "circuit",
    "circuitOpenedAt",
    "circuitRetryAt",
    "circuitCooldown",
    "circuitProbe",
    "circuitProbeUntil",
)


def record_success(client: Redis, *, sub_id: str, at_ms: int) -> bool:
    """Count a delivered attempt; ends the subscription's current run of failures. True
    when there was one (the subscription recovered)."""
    # a script, so that a status never outlives its subscription: a worker finishing an
    # attempt after the subscription was deleted must not recreate the status keys
    return scripts.record_success(client, sub_id=sub_id, at_ms=at_ms) == 2


def record_failure(
    client: Redis, *, sub_id: str, at_ms: int, status_code: int | None, response_body: str
) -> bool:
    """Count a failed attempt and keep it among the last 10 errors (newest first). True
    when it began a run of failures."""
    entry = {
        "statusCode": status_code,
        "responseBody": response_body[:MAX_RESPONSE_BODY],
        "timestamp": at_ms,
    }
    began = scripts.record_failure(
        client, sub_id=sub_id, at_ms=at_ms, entry_json=json.dumps(entry), errors_kept=MAX_ERRORS
    )
    return began == 2


def pause(client: Redis, *, sub_id: str, until_ms: int, reason: str, at_ms: int) -> int:
    """Hold back every delivery of the subscription until `until_ms` (its receiver's
    Retry-After): they wait without an attempt. 2 when a pause began, 1 when the current
    one grew, 0 when it already lasts longer (or the subscription is gone)."""
    return scripts.pause(client, sub_id=sub_id, until_ms=until_ms, reason=reason, at_ms=at_ms)


# ordering keys read for `_status`, and shown (those holding the most back first)
HELD_KEYS_READ = 200
HELD_KEYS_SHOWN = 20


def held_back(client: Redis, *, sub_id: str) -> list[dict[str, Any]]:
    """The ordering keys of the subscription that hold deliveries back, and by what: their
    head delivery (its state, attempts, next attempt, reason) and how many wait behind it."""
    orders_key = keys.subscription_orders(sub_id)
    prefix = keys.subscription_order(sub_id, "")
    with translate_errors():
        orders: list[str] = client.srandmember(orders_key, HELD_KEYS_READ)  # type: ignore[assignment]
        pipe = client.pipeline(transaction=False)
        for order in orders:
            pipe.zcard(order)
            pipe.zrange(order, 0, 0)
        counted = pipe.execute()
        held = [
            (order.removeprefix(prefix), int(counted[2 * n]) - 1, counted[2 * n + 1][0])
            for n, order in enumerate(orders)
            if int(counted[2 * n]) > 1 and counted[2 * n + 1]
        ]
        held.sort(key=lambda item: -item[1])
        held = held[:HELD_KEYS_SHOWN]
        pipe = client.pipeline(transaction=False)
        for _, _, head in held:
            pipe.hmget(keys.delivery(head), ["state", "attempts", "next", "reason"])
        heads = pipe.execute()
    return [
        {
            "key": key,
            "waiting": waiting,
            "head": head,
            "headState": fields[0],
            "headAttempts": int(fields[1] or 0),
            "headNextAttemptAt": int(fields[2]) if fields[0] == "failed" and fields[2] else None,
            "headReason": fields[3] or None,
        }
        for (key, waiting, head), fields in zip(held, heads, strict=True)
    ]


# ordering keys read per subscription by `flows`: a scrape or `relay status` does bounded
# work however many keys a subscription has (past this, the held figures are a lower bound)
FLOW_KEYS_READ = 200
# a bucket left empty longer ago than this says nothing about now: no claim wanted a token
THROTTLED_WITHIN_MS = 2_000
_FLOW_FIELDS = (
    "pausedUntil",
    "pausedReason",
    "maxInFlight",
    "maxPerSecond",
    "rateTokens",
    "rateAt",
)
_PIPELINE_CHUNK = 1_000  # commands per round trip when counting ordering keys


@dataclass(frozen=True)
class Flow:
    """What paces a subscription's deliveries now: a pause, its own limits, the slots in
    flight, its token bucket, and the ordering keys holding deliveries back."""

    paused_until: int | None = None  # ms; only while the pause lasts
    paused_reason: str | None = None
    max_in_flight: int | None = None  # its own cap (None: RELAY_SUBSCRIPTION_MAX_IN_FLIGHT)
    max_per_second: float | None = None
    in_flight: int = 0  # send slots held (claimed, or kept for a waiting delivery)
    throttled: bool = False  # its last claim, within THROTTLED_WITHIN_MS, left < 1 token
    held_keys: int = 0  # ordering keys with deliveries behind their head
    held_deliveries: int = 0  # the deliveries behind those heads


def flows(client: Redis, *, sub_ids: Sequence[str], now_ms: int) -> dict[str, Flow]:
    """Each subscription's `Flow`, reading at most FLOW_KEYS_READ ordering keys of each."""
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for sub_id in sub_ids:
            pipe.hmget(keys.subscription_status(sub_id), _FLOW_FIELDS)
            pipe.zcount(keys.subscription_inflight(sub_id), f"({now_ms}", "+inf")
            pipe.srandmember(keys.subscription_orders(sub_id), FLOW_KEYS_READ)
        read = pipe.execute() if sub_ids else []
        orders: list[list[str]] = [read[3 * n + 2] for n in range(len(sub_ids))]
        sizes = iter(_order_sizes(client, [key for keys_ in orders for key in keys_]))
    return {
        sub_id: _flow(read[3 * n], int(read[3 * n + 1]), _held(sizes, len(orders[n])), now_ms)
        for n, sub_id in enumerate(sub_ids)
    }


def flows_of_all(client: Redis, *, now_ms: int) -> dict[str, Flow]:
    """`flows` of every subscription (for the metrics, which have no records at hand)."""
    with translate_errors():
        sub_ids: list[str] = client.zrange(keys.SUBS, 0, -1)  # type: ignore[assignment]
    return flows(client, sub_ids=sub_ids, now_ms=now_ms)


def _order_sizes(client: Redis, order_keys: list[str]) -> list[int]:
    sizes: list[int] = []
    for start in range(0, len(order_keys), _PIPELINE_CHUNK):
        pipe = client.pipeline(transaction=False)
        for key in order_keys[start : start + _PIPELINE_CHUNK]:
            pipe.zcard(key)
        sizes.extend(int(size) for size in pipe.execute())
    return sizes


def _held(sizes: Iterator[int], count: int) -> tuple[int, int]:
    """(keys holding deliveries back, deliveries behind their heads) of the next `count`."""
    behind = [size - 1 for size in (next(sizes) for _ in range(count)) if size > 1]
    return len(behind), sum(behind)


def _flow(fields: list[str | None], in_flight: int, held: tuple[int, int], now: int) -> Flow:
    paused_until, reason, cap, rate, tokens, rate_at = fields
    pause = int(paused_until or 0)
    per_second = float(rate) if rate else None
    recent = rate_at is not None and now - int(float(rate_at)) <= THROTTLED_WITHIN_MS
    return Flow(
        paused_until=pause if pause > now else None,
        paused_reason=(reason or "") if pause > now else None,
        max_in_flight=int(cap) if cap else None,
        max_per_second=per_second,
        in_flight=in_flight,
        throttled=per_second is not None and recent and float(tokens or 1) < 1,
        held_keys=held[0],
        held_deliveries=held[1],
    )


def failing_since(client: Redis, *, sub_id: str) -> int | None:
    """When the current run of failures began (ms), or None when the last attempt succeeded."""
    with translate_errors():
        value = client.hget(keys.subscription_status(sub_id), "failingSince")
    return None if value is None else int(value)


def get_status(client: Redis, *, sub_id: str) -> dict[str, Any]:
    """The `_status` representation: counters, last times, last errors, why it was turned off,
    and the ordering keys holding deliveries back (`heldBack`, when any)."""
    with translate_errors():
        pipe = client.pipeline(transaction=True)
        pipe.hgetall(keys.subscription_status(sub_id))
        pipe.lrange(keys.subscription_errors(sub_id), 0, MAX_ERRORS - 1)
        fields, errors = pipe.execute()
    status = status_from(fields, errors)
    held = held_back(client, sub_id=sub_id)
    if held:
        status["heldBack"] = held
    return status


def get_statuses(client: Redis, *, sub_ids: list[str]) -> dict[str, dict[str, Any]]:
    """`get_status` for many subscriptions in one round trip."""
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for sub_id in sub_ids:
            pipe.hgetall(keys.subscription_status(sub_id))
            pipe.lrange(keys.subscription_errors(sub_id), 0, MAX_ERRORS - 1)
        results = pipe.execute()
    return {
        sub_id: status_from(results[2 * n], results[2 * n + 1]) for n, sub_id in enumerate(sub_ids)
    }


def status_from(fields: dict[str, str], errors: list[str]) -> dict[str, Any]:
    """Build `_status` from the raw hash and error list (also used for batched reads)."""
    status: dict[str, Any] = {"successCount": 0, "errorCount": 0}
    if fields.get("circuit") == "open":
        status["circuitState"] = "half-open" if "circuitProbe" in fields else "open"
    for name in _INT_FIELDS:  # the circuit's times exist only while it is open
        if name in fields:
            status[name] = int(fields[name])
    if "disabledReason" in fields:
        status["disabledReason"] = fields["disabledReason"]
    paused_until = int(fields.get("pausedUntil") or 0)
    if paused_until > now_ms():  # a pause that is over is not shown
        status["pausedUntil"] = paused_until
        status["pausedReason"] = fields.get("pausedReason", "")
    status["errors"] = [_without_nulls(json.loads(raw)) for raw in errors]
    return status


def queue_turned_off(pipe: Pipeline, *, sub_id: str, reason: str, at_ms: int) -> None:
    """Queue, in the caller's transaction, the note that the relay turned it off and why.

    Off ends its circuit too: an open circuit would let its waiting deliveries out one
    "probe" per pump beat, where off lets them all out at once for their claims to skip.
    """
    pipe.hset(
        keys.subscription_status(sub_id), mapping={"disabledReason": reason, "disabledAt": at_ms}
    )
    queue_circuit_closed(pipe, sub_id=sub_id)


def queue_turned_on(pipe: Pipeline, *, sub_id: str) -> None:
    """Queue, in the caller's transaction, forgetting why it was off and the failing run.

    An admin turning a subscription back on gives it a fresh start: without this the
    workers would turn it off again at its next failure, and an open circuit would keep
    holding its deliveries back.
    """
    pipe.hdel(keys.subscription_status(sub_id), "disabledReason", "disabledAt", "failingSince")
    queue_circuit_closed(pipe, sub_id=sub_id)


def queue_circuit_closed(pipe: Pipeline, *, sub_id: str) -> None:
    """Queue, in the caller's transaction, the end of its circuit (also: its URL changed)."""
    pipe.hdel(keys.subscription_status(sub_id), *CIRCUIT_FIELDS)
    pipe.zrem(keys.CIRCUITS, sub_id)


def queue_limits(
    pipe: Pipeline, *, sub_id: str, max_in_flight: int | None, max_per_second: float | None
) -> None:
    """Queue, in the caller's transaction, the subscription's own limits, where the claim,
    hand-off and pump scripts read them (relay/store/lua/_admit.lua); None: the default
    (RELAY_SUBSCRIPTION_MAX_IN_FLIGHT), no rate limit."""
    key = keys.subscription_status(sub_id)
    for field, value in (("maxInFlight", max_in_flight), ("maxPerSecond", max_per_second)):
        if value is None:
            pipe.hdel(key, field)
        else:
            pipe.hset(key, field, str(value))
    if max_per_second is None:
        pipe.hdel(key, "rateTokens", "rateAt")


def queue_errors_cleared(pipe: Pipeline, *, sub_id: str) -> None:
    """Queue, in the caller's transaction, forgetting the last errors (the counters stay).

    Done when the config changes: the errors answered the old destination and headers, and
    their text may echo a value that is no longer stored, so nothing could mask it.
    """
    pipe.delete(keys.subscription_errors(sub_id))


def status_keys(sub_id: str) -> tuple[str, str]:
    """The keys holding a subscription's status, deleted along with it."""
    return keys.subscription_status(sub_id), keys.subscription_errors(sub_id)


def _without_nulls(entry: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in entry.items() if value is not None}
