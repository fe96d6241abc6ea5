"""Exceptions of the `workers` package, split by what the caller does next (as kombu does).

WorkerError                      root (a relay.errors.RelayError)
└── DeliveryError                a delivery attempt did not succeed
    ├── RetryableDeliveryError   try again on the retry schedule (network, timeouts, 5xx, 429)
    └── PermanentDeliveryError   never retry: the delivery is dead
        ├── DestinationRefusedError  the destination guard refused the address
        ├── SubscriptionGoneError    the receiver answered 410 Gone: turn the subscription off
        └── UnknownFormatError       the subscription asks for a payload format we cannot render

Delivery itself never raises for network problems: `workers.http_client` returns a
`SendResult` and `workers.delivery.retry.classify` decides. These exceptions are for code
that has to stop a task (a payload that cannot be rendered) or wants to carry an
outcome through a raise.
"""

from __future__ import annotations

from relay.errors import RelayError

__all__ = [
    "DeliveryError",
    "DestinationRefusedError",
    "PermanentDeliveryError",
    "RetryableDeliveryError",
    "SubscriptionGoneError",
    "UnknownFormatError",
    "WorkerError",
]


class WorkerError(RelayError):
    """Root of every error the workers raise on purpose."""


class DeliveryError(WorkerError):
    """A delivery attempt did not succeed; `retryable` says whether to try again."""

    retryable = False


class RetryableDeliveryError(DeliveryError):
    """A failure that may pass: retry on the schedule."""

    retryable = True


class PermanentDeliveryError(DeliveryError):
    """A failure retrying cannot fix: the delivery is dead."""


class DestinationRefusedError(PermanentDeliveryError):
    """The destination guard refused the address the URL resolves to."""


class SubscriptionGoneError(PermanentDeliveryError):
    """The receiver answered 410 Gone: it wants no more deliveries."""


class UnknownFormatError(PermanentDeliveryError):
    """A payload format other than `unleash` or `launchdarkly`."""
