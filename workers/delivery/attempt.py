"""A delivery's attempt: what a batch prepared for it, and what the attempt led to.

Its own module so that the batch (which makes them) and subscription health and
telemetry (which read them) do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.store.deliveries import Delivery, Finish
from relay.store.subscriptions import SubscriptionRecord
from workers.delivery.retry import Outcome
from workers.delivery.sender import OutboundRequest
from workers.http_client import SendResult


@dataclass(frozen=True)
class Prepared:
    """A claimed delivery with either a request to send or a decision taken without one."""

    delivery: Delivery
    record: SubscriptionRecord | None
    request: OutboundRequest | None = None
    decided: Finish | None = None


@dataclass(frozen=True)
class Done:
    """A delivery's attempt and what it led to."""

    prepared: Prepared
    result: SendResult | None
    outcome: Outcome | None
    finish: Finish
