"""What is waiting where: queue depths and dead letters, read for `/metrics` and `relay status`.

Read-only views over keys other modules write (the outbox of relay/store/events.py, the
due, claims, waiting and dead sets and the open circuits of relay/store/deliveries.py).
Every process reads the same Redis, so these figures are global, whichever API process
serves them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from relay import clock
from relay.store import keys
from relay.store.client import Redis, translate_errors

_CHUNK = 1000  # dead deliveries looked up per round trip


@dataclass(frozen=True)
class QueueDepths:
    """How many entries each queue holds right now."""

    outbox: int  # recorded events not fanned out yet
    due: int  # deliveries still to deliver (pending, failed, or being attempted)
    ready: int  # of those, the ones whose attempt time has come
    claims: int  # deliveries a worker holds a lease on
    dead: int  # dead letters kept for the retention period
    # deliveries due while their subscription had no free send slot or an open circuit
    waiting: int = 0


def queue_depths(client: Redis, *, now_ms: int | None = None) -> QueueDepths:
    """The depth of each queue, read in two round trips."""
    now = clock.now_ms() if now_ms is None else now_ms
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        pipe.zcard(keys.OUTBOX)
        pipe.zcard(keys.DUE)
        pipe.zcount(keys.DUE, "-inf", now)
        pipe.zcard(keys.CLAIMS)
        pipe.zcard(keys.DEAD)
        pipe.smembers(keys.WAITING)
        outbox, due, ready, claims, dead, waiting_subs = pipe.execute()
    waiting = waiting_by_subscription(client, sub_ids=sorted(waiting_subs))
    return QueueDepths(
        outbox=int(outbox),
        due=int(due),
        ready=int(ready),
        claims=int(claims),
        dead=int(dead),
        waiting=sum(waiting.values()),
    )


def waiting_by_subscription(client: Redis, *, sub_ids: Sequence[str]) -> dict[str, int]:
    """How many deliveries of each subscription wait for a send slot or for its circuit."""
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for sub_id in sub_ids:
            pipe.zcard(keys.subscription_waiting(sub_id))
        counts = pipe.execute() if sub_ids else []
    return {sub_id: int(n) for sub_id, n in zip(sub_ids, counts, strict=True)}


def open_circuits(client: Redis) -> list[str]:
    """The subscriptions whose circuit is open (probing included)."""
    with translate_errors():
        listed: list[str] = client.zrange(keys.CIRCUITS, 0, -1)  # type: ignore[assignment]
        pipe = client.pipeline(transaction=False)
        for sub_id in listed:
            pipe.hget(keys.subscription_status(sub_id), "circuit")
        states = pipe.execute() if listed else []
    # the list is tidied by the pump: trust the subscription's own status
    return [sub_id for sub_id, state in zip(listed, states, strict=True) if state == "open"]


def outbox_enqueued_at(client: Redis, *, ids: Sequence[int]) -> dict[int, int]:
    """When each event still in the outbox was put there (ms); events not there are left out."""
    if not ids:
        return {}
    with translate_errors():
        scores: list[Any] = client.zmscore(keys.OUTBOX, [str(i) for i in ids])
    return {event_id: int(score) for event_id, score in zip(ids, scores, strict=True) if score}


def dead_by_subscription(client: Redis) -> dict[str, int]:
    """How many dead letters each subscription has (dead deliveries whose record expired,
    or whose subscription field is missing, are counted under "")."""
    counts: Counter[str] = Counter()
    with translate_errors():
        dead_ids: list[str] = client.zrange(keys.DEAD, 0, -1)  # type: ignore[assignment]
        for chunk in _chunks(dead_ids):
            pipe = client.pipeline(transaction=False)
            for delivery_id in chunk:
                pipe.hget(keys.delivery(delivery_id), "sub")
            counts.update(str(sub or "") for sub in pipe.execute())
    return dict(counts)


def delivery_states(client: Redis, *, ids: Sequence[str]) -> dict[str, str | None]:
    """The state of each delivery (None when it has no record: never made, or expired)."""
    states: dict[str, str | None] = {}
    with translate_errors():
        for chunk in _chunks(ids):
            pipe = client.pipeline(transaction=False)
            for delivery_id in chunk:
                pipe.hget(keys.delivery(delivery_id), "state")
            states.update(zip(chunk, pipe.execute(), strict=True))
    return states


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
