"""What a send's result means for the delivery, and when the next attempt is due."""

from __future__ import annotations

import random
from enum import StrEnum

from relay.settings import Settings
from relay.store.deliveries import Reach
from workers.http_client import SendResult

__all__ = ["Outcome", "classify", "next_delay", "reach"]

_RNG = random.Random()


class Outcome(StrEnum):
    """What happens to a delivery after one attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    GONE = "gone"  # 410: the receiver wants nothing more, turn the subscription off
    DEAD = "dead"  # permanent: refused destination, or retry schedule exhausted


def classify(result: SendResult) -> Outcome:
    """2xx delivered, 410 gone, refused dead; anything else (3xx, 4xx, 5xx, no answer) retry.

    A 2xx counts even when reading the response body was then cut short: the receiver
    has already accepted the event, and the body is only kept for the record.
    """
    if result.refused:
        return Outcome.DEAD
    status = result.status_code
    if status is not None and 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 410:
        return Outcome.GONE
    return Outcome.RETRY


# errors of a send that got no answer because the receiver could not be reached in time
# (workers/http_client.py); DNS failures come as "cannot resolve ..."
_UNREACHABLE = ("timed out", "connection failed", "network error", "cannot resolve")


def reach(result: SendResult) -> Reach:
    """Answered (any status), unreachable (timeout, connection or DNS failure), or neither.

    A refused destination, a request that could not be written, or a receiver speaking
    garbage count as neither: they do not hold a send slot for long, and the circuit
    breaker is about receivers that do.
    """
    if result.status_code is not None:
        return Reach.ANSWERED
    if not result.refused and (result.error or "").startswith(_UNREACHABLE):
        return Reach.UNREACHABLE
    return Reach.NONE


def next_delay(
    *,
    attempt: int,
    retry_after: float | None,
    settings: Settings,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait after failed attempt number `attempt` (1-based); None when exhausted.

    The scheduled delay gets +-`retry_jitter` of itself so that a burst of failures does
    not come back as one burst; a receiver's Retry-After can lengthen it, up to
    `retry_after_cap`, never shorten it.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if attempt > len(settings.retry_schedule):
        return None
    delay = settings.retry_schedule[attempt - 1]
    if settings.retry_jitter:
        delay *= 1 + (rng or _RNG).uniform(-settings.retry_jitter, settings.retry_jitter)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, settings.retry_after_cap))
    return delay
