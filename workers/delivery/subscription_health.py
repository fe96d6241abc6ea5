"""After a batch of attempts: each subscription's `_status`, and turning failing ones off.

A 410 Gone turns the subscription off at once, and so does a destination the guard refuses
when connecting (the URL's name now resolves to a forbidden address, say): every later
delivery would be refused too. One failing continuously for `settings.disable_after`
(since its `failing_since`) is turned off too. A 429 or 503 with Retry-After pauses the
whole subscription until then: its other deliveries wait in the store without an attempt
(relay/store/lua/_admit.lua), not only the one that got the answer. Test deliveries and
deliveries decided without an attempt (skipped, dead before sending) change nothing.
Circuits opened or closed by the batch (relay/store/lua/finish.lua keeps them) are logged
here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from relay.observability.metrics import PAUSES
from relay.settings import Settings
from relay.store import subscription_status, subscriptions
from relay.store.client import Redis
from relay.store.deliveries import DeliveryKind
from relay.store.subscriptions import SubscriptionRecord
from workers.delivery.operational import DISABLED, FAILING, PAUSED, RECOVERED, Notice
from workers.delivery.retry import Outcome
from workers.http_client import SendResult

if TYPE_CHECKING:
    from workers.delivery.attempt import Done

log = logging.getLogger(__name__)

GONE_REASON = "receiver answered 410 Gone"
# a receiver that answers these with Retry-After asks the whole subscription to wait
PAUSING_STATUSES = (429, 503)


def apply(client: Redis, *, done: Sequence[Done], settings: Settings, now_ms: int) -> list[Notice]:
    """Record the batch's attempts in `_status`, turn off subscriptions that must be, and
    say what changed: the operational events to record (workers/delivery/operational.py)."""
    notices: list[Notice] = []
    records: dict[str, SubscriptionRecord] = {}
    succeeded: dict[str, int] = {}
    failed: set[str] = set()
    gone: set[str] = set()
    refused: dict[str, str] = {}
    paused: dict[str, tuple[int, str]] = {}
    for item in done:
        record = item.prepared.record
        if (
            item.result is None
            or record is None
            or item.prepared.delivery.kind is DeliveryKind.TEST
        ):
            continue
        sub_id = record.id
        records[sub_id] = record
        at_ms = item.finish.attempt.at if item.finish.attempt else now_ms
        if item.outcome is Outcome.DELIVERED:
            succeeded[sub_id] = max(at_ms, succeeded.get(sub_id, 0))
            continue
        failed.add(sub_id)
        began = subscription_status.record_failure(
            client,
            sub_id=sub_id,
            at_ms=at_ms,
            status_code=item.result.status_code,
            response_body=item.result.response_body or (item.result.error or ""),
        )
        if began:
            notices.append(Notice(FAILING, record, {"statusCode": item.result.status_code}))
        pause = _asked_pause(item.result, at_ms=at_ms, settings=settings)
        if pause is not None and pause[0] > paused.get(sub_id, (0, ""))[0]:
            paused[sub_id] = pause
        if item.outcome is Outcome.GONE:
            gone.add(sub_id)
        elif item.result.refused:
            refused[sub_id] = item.result.error or "destination refused"
    for sub_id, (until_ms, reason) in sorted(paused.items()):
        if _pause(client, sub_id=sub_id, until_ms=until_ms, reason=reason, now_ms=now_ms):
            details = {"pausedUntil": until_ms, "reason": reason}
            notices.append(Notice(PAUSED, records[sub_id], details))
    # one success per subscription and batch is enough: it ends the run of failures
    for sub_id, at_ms in succeeded.items():
        if subscription_status.record_success(client, sub_id=sub_id, at_ms=at_ms):
            notices.append(Notice(RECOVERED, records[sub_id]))
    turned_off: dict[str, str] = {}
    for sub_id in sorted(gone):
        log.warning(
            "subscription %s: receiver answered 410 Gone, turning it off",
            sub_id,
            extra={"subscription_id": sub_id},
        )
        subscriptions.turn_off(client, sub_id=sub_id, reason=GONE_REASON)
        turned_off[sub_id] = GONE_REASON
    for sub_id, reason in sorted(refused.items()):
        if sub_id not in gone and _turn_off_refused(client, sub_id=sub_id, reason=reason):
            turned_off[sub_id] = reason
    stopped = gone | refused.keys()
    turned_off.update(
        _disable_long_failing(
            client, failed - stopped - succeeded.keys(), settings=settings, now=now_ms
        )
    )
    for sub_id, reason in sorted(turned_off.items()):
        notices.append(Notice(DISABLED, records[sub_id], {"reason": reason}))
    return notices


def _turn_off_refused(client: Redis, *, sub_id: str, reason: str) -> bool:
    record = subscriptions.get_subscription(client, sub_id=sub_id)
    if record is None or not record.on:
        return False
    log.warning(
        "subscription %s: %s, turning it off",
        sub_id,
        reason,
        extra={"subscription_id": sub_id},
    )
    subscriptions.turn_off(client, sub_id=sub_id, reason=reason)
    return True


def _asked_pause(result: SendResult, *, at_ms: int, settings: Settings) -> tuple[int, str] | None:
    """The pause a 429 or 503 with Retry-After asks for (capped by RELAY_RETRY_AFTER_CAP)."""
    if result.status_code not in PAUSING_STATUSES or result.retry_after is None:
        return None
    seconds = min(result.retry_after, settings.retry_after_cap)
    reason = f"receiver answered {result.status_code} with Retry-After {seconds:g} s"
    return at_ms + int(seconds * 1000), reason


def _pause(client: Redis, *, sub_id: str, until_ms: int, reason: str, now_ms: int) -> bool:
    """Pause the subscription; True when a pause began (not when one grew)."""
    changed = subscription_status.pause(
        client, sub_id=sub_id, until_ms=until_ms, reason=reason, at_ms=now_ms
    )
    if changed:
        PAUSES.inc()
        log.warning(
            "subscription %s: %s; its deliveries wait %.1f s",
            sub_id,
            reason,
            max(until_ms - now_ms, 0) / 1000,
            extra={"subscription_id": sub_id},
        )
    return changed == 2


def circuits_changed(*, opened: Sequence[str], closed: Sequence[str], settings: Settings) -> None:
    """Log the circuits a batch opened (deliveries now wait) and closed (they flow again)."""
    for sub_id in opened:
        log.warning(
            "subscription %s: circuit opened after %d timeouts or connection failures in a"
            " row; its deliveries wait, one probe in %.0f s",
            sub_id,
            settings.circuit_failures,
            settings.circuit_cooldown,
            extra={"subscription_id": sub_id},
        )
    for sub_id in closed:
        log.info(
            "subscription %s: circuit closed, the receiver answers again",
            sub_id,
            extra={"subscription_id": sub_id},
        )


def _disable_long_failing(
    client: Redis, sub_ids: set[str], *, settings: Settings, now: int
) -> dict[str, str]:
    """Turn off those failing for RELAY_DISABLE_AFTER; the reason of each turned off."""
    turned_off: dict[str, str] = {}
    limit_ms = int(settings.disable_after * 1000)
    for sub_id in sorted(sub_ids):
        since = subscription_status.failing_since(client, sub_id=sub_id)
        if since is None or now - since < limit_ms:
            continue
        record = subscriptions.get_subscription(client, sub_id=sub_id)
        if record is None or not record.on:
            continue
        reason = f"failing continuously for {_duration(now - since)} (RELAY_DISABLE_AFTER)"
        log.warning(
            "subscription %s: %s, turning it off", sub_id, reason, extra={"subscription_id": sub_id}
        )
        subscriptions.turn_off(client, sub_id=sub_id, reason=reason)
        turned_off[sub_id] = reason
    return turned_off


def _duration(ms: int) -> str:
    seconds = ms / 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"
