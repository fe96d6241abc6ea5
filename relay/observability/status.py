"""The relay's health at a glance, read straight from Redis: what `relay status` and
`GET /api/v2/status` show.

Queue depths, the Redis primary's replicas (and the write concern they must meet), the
workers seen lately, and each subscription's delivery health (on or
off and why, its circuit, a pause, success and error counts, the last error, deliveries
waiting, dead letters) and flow (requests in flight against its limits, throttling,
ordering keys holding deliveries back). `gather` reads it, `as_json` is the machine form
(`relay status --json`; the API's answer is built from it, masked for its caller). Nothing
here is masked: the CLI's user reads Redis itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Final

from relay.clock import now_ms
from relay.store import heartbeats, queues, subscription_status, subscriptions
from relay.store.client import Redis, Replication, replication
from relay.store.queues import QueueDepths
from relay.store.subscription_status import Flow

WORKERS_WINDOW_S: Final = 86_400.0  # workers gone longer than this are forgotten


@dataclass(frozen=True)
class WorkerSeen:
    name: str
    last_seen: int  # ms
    alive: bool  # a heartbeat within the settings' worker_heartbeat_ttl


@dataclass(frozen=True)
class SubscriptionHealth:
    id: str
    name: str
    on: bool
    url: str
    success_count: int
    error_count: int
    last_success: int | None  # ms
    last_error: int | None  # ms
    last_error_text: str | None  # status code and the start of the answer, or the error
    failing_since: int | None  # ms
    disabled_reason: str | None
    dead: int  # dead letters kept
    circuit: str | None = None  # "open" or "half-open" (a probe in flight); None: closed
    circuit_retry_at: int | None = None  # ms: when the next probe may go
    waiting: int = 0  # deliveries waiting for a send slot or for the circuit
    paused_until: int | None = None  # ms: its receiver's Retry-After, while it lasts
    paused_reason: str | None = None
    in_flight: int = 0  # send slots held
    max_in_flight: int | None = None  # its own cap, when set
    max_per_second: float | None = None
    throttled: bool = False  # its token bucket was empty at its last claim (2 s at most ago)
    held_keys: int = 0  # ordering keys holding deliveries back (of 200 read at most)
    held_deliveries: int = 0  # deliveries waiting behind those keys' heads


@dataclass(frozen=True)
class Status:
    at: int  # ms
    queues: QueueDepths
    workers: list[WorkerSeen]
    subscriptions: list[SubscriptionHealth]
    dead_unattributed: int  # dead letters whose subscription is gone or whose record expired
    redis: Replication


def gather(
    client: Redis,
    *,
    worker_ttl: float,
    records: list[subscriptions.SubscriptionRecord] | None = None,
) -> Status:
    """Read everything `relay status` shows; of `records` when given (read once by a caller
    that also needs them), else of every subscription."""
    now = now_ms()
    depths = queues.queue_depths(client, now_ms=now)
    seen = heartbeats.workers_seen(client, within_seconds=WORKERS_WINDOW_S)
    workers = [
        WorkerSeen(name, last, alive=now - last <= worker_ttl * 1000)
        for name, last in sorted(seen.items())
    ]
    if records is None:
        records = subscriptions.list_subscriptions(client)
    statuses = subscription_status.get_statuses(client, sub_ids=[r.id for r in records])
    dead = queues.dead_by_subscription(client)
    waiting = queues.waiting_by_subscription(client, sub_ids=[r.id for r in records])
    flows = subscription_status.flows(client, sub_ids=[r.id for r in records], now_ms=now)
    health = [
        _health(r, statuses[r.id], dead.pop(r.id, 0), waiting[r.id], flows[r.id]) for r in records
    ]
    return Status(
        now,
        depths,
        workers,
        health,
        dead_unattributed=sum(dead.values()),
        redis=replication(client),
    )


def _health(
    record: subscriptions.SubscriptionRecord,
    status: dict[str, Any],
    dead: int,
    waiting: int,
    flow: Flow,
) -> SubscriptionHealth:
    errors: list[dict[str, Any]] = status.get("errors", [])
    return SubscriptionHealth(
        id=record.id,
        name=record.name,
        on=record.on,
        url=str(record.config.get("url", "")),
        success_count=int(status.get("successCount", 0)),
        error_count=int(status.get("errorCount", 0)),
        last_success=status.get("lastSuccess"),
        last_error=status.get("lastError"),
        last_error_text=_error_text(errors[0]) if errors else None,
        failing_since=status.get("failingSince"),
        disabled_reason=status.get("disabledReason"),
        dead=dead,
        circuit=status.get("circuitState"),
        circuit_retry_at=status.get("circuitRetryAt"),
        waiting=waiting,
        paused_until=flow.paused_until,
        paused_reason=flow.paused_reason,
        in_flight=flow.in_flight,
        max_in_flight=flow.max_in_flight,
        max_per_second=flow.max_per_second,
        throttled=flow.throttled,
        held_keys=flow.held_keys,
        held_deliveries=flow.held_deliveries,
    )


def _error_text(error: dict[str, Any]) -> str:
    code = error.get("statusCode")
    body = " ".join(str(error.get("responseBody", "")).split())
    prefix = f"{code}" if code is not None else "no answer"
    return f"{prefix}: {body}" if body else prefix


def as_json(status: Status) -> dict[str, Any]:
    """The machine form of `status` (times in ms since the epoch, like the API's `_status`)."""
    return {
        "at": status.at,
        "queues": asdict(status.queues),
        "workers": [
            {"name": w.name, "lastSeen": w.last_seen, "alive": w.alive} for w in status.workers
        ],
        "subscriptions": [_camel(s) for s in status.subscriptions],
        "deadUnattributed": status.dead_unattributed,
        "redis": {
            "role": status.redis.role,
            "replicas": [
                {"address": address, "lagBytes": lag}
                for address, lag in zip(status.redis.replicas, status.redis.lag_bytes, strict=True)
            ],
            "minReplicas": status.redis.required,
        },
    }


def _camel(health: SubscriptionHealth) -> dict[str, Any]:
    # its fields are flat values: read one by one, not deep-copied by `asdict` (which took
    # 40 ms of the API's answer with 1,000 subscriptions)
    return {camel: getattr(health, name) for name, camel in _CAMEL_NAMES.items()}


def _camel_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


_CAMEL_NAMES: Final = {f.name: _camel_name(f.name) for f in fields(SubscriptionHealth)}
