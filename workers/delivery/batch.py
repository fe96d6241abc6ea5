"""Delivery: claim → render → sign → send → record → decide, for a batch of delivery ids.

Plain functions over a Redis client and a send function; `workers.tasks.deliver` wraps them.
Redis work is batched (one claim script, one read of the events, one finish script) and
the sends of a batch run concurrently on the sender's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from policies import EventTarget, map_event
from relay.clock import now_ms
from relay.destinations import reaches_listener
from relay.errors import StoreError
from relay.integrations.catalog import WEBHOOK, Catalog
from relay.integrations.context import audit_entry
from relay.integrations.render import EventContext, RenderFailure, render_request
from relay.observability.metrics import UNREPLICATED_WRITES
from relay.settings import Settings
from relay.store import deliveries, events
from relay.store.client import Redis, confirm_replicas, required_replicas
from relay.store.deliveries import (
    Attempt,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Finish,
    Limits,
    Reach,
)
from relay.store.subscriptions import SubscriptionRecord
from workers.delivery import operational, payloads, signing, subscription_health, telemetry
from workers.delivery.attempt import Done, Prepared
from workers.delivery.retry import Outcome, classify, next_delay, reach
from workers.delivery.sender import OutboundRequest, SendAll
from workers.delivery.subscription_cache import SubscriptionCache
from workers.errors import PermanentDeliveryError
from workers.http_client import SendResult

log = logging.getLogger(__name__)

Clock = Callable[[], int]


Handoff = Callable[[list[str]], object]
# asks for the fan-out of relay's own events the batch recorded (without: the sweep does)
Announce = Callable[[list[int]], object]


def limits_of(settings: Settings) -> Limits:
    """The per-subscription limits of `settings`, in the store's terms."""
    return Limits(
        max_in_flight=settings.subscription_max_in_flight,
        lease_ms=int(settings.delivery_lease * 1000),
        circuit_failures=settings.circuit_failures,
        circuit_cooldown_ms=int(settings.circuit_cooldown * 1000),
        circuit_cooldown_max_ms=int(settings.circuit_cooldown_max * 1000),
    )


async def deliver_batch(
    client: Redis,
    *,
    ids: Sequence[str],
    settings: Settings,
    cache: SubscriptionCache,
    catalog: Catalog,
    send: SendAll,
    clock: Clock = now_ms,
    handoff: Handoff | None = None,
    announce: Announce | None = None,
) -> list[Done]:
    """Attempt the given deliveries that are due and unclaimed; what happened to each.

    A delivery whose subscription has all its slots taken (`subscription_max_in_flight`)
    or an open circuit is not claimed: it waits, and `handoff` gets the waiting deliveries
    handed the slots this batch frees, to attempt at once (without it, the pump finds them
    due after a lease).

    Runs on the sender's event loop, Redis calls included: they take well under a
    millisecond each, and keeping all of a batch's work on one thread spares the worker
    the GIL hand-offs that cost more CPU than the work itself (measured: bench/).
    """
    limits = limits_of(settings)
    claimed = deliveries.claim(
        client, ids=ids, now_ms=clock(), lease_ms=limits.lease_ms, limits=limits
    )
    if not claimed:
        return []
    # the snapshot's records, even while a rebuild is under way: a send never waits for one
    records = cache.records(client, sub_ids={d.sub_id for d in claimed})
    stored = _load_events(client, claimed)
    renders = _Renders(stored, catalog, base_url=settings.public_url)
    prepared = [_prepare(d, records.get(d.sub_id), renders, clock()) for d in claimed]
    done = [Done(p, None, None, p.decided) for p in prepared if p.decided is not None]
    sending = [p for p in prepared if p.request is not None]
    started = clock()
    results = await send([p.request for p in sending if p.request is not None])
    for item, result in zip(sending, results, strict=True):
        done.append(_decide(item, result, settings=settings, at_ms=started, now=clock()))
    settled = deliveries.settle(
        client,
        results=[d.finish for d in done],
        now_ms=clock(),
        ttl_s=int(settings.retention_days * 86400),
        limits=limits,
    )
    if settled.promoted and handoff is not None:
        handoff(settled.promoted)
    telemetry.attempted(done, changed=settled.changed, events=stored, now_ms=clock())
    notices = subscription_health.apply(client, done=done, settings=settings, now_ms=clock())
    notices += _dead_notices(done, changed=settled.changed, stored=stored)
    recorded = operational.record(client, notices, now_ms=clock())
    if recorded and announce is not None:
        announce(recorded)
    subscription_health.circuits_changed(
        opened=settled.opened, closed=settled.closed, settings=settings
    )
    if required_replicas(client):
        # off the loop: WAIT takes a replica's round trip, up to the timeout when one is gone
        await asyncio.to_thread(_confirm_outcomes, client, len(done))
    return done


def _confirm_outcomes(client: Redis, count: int) -> None:
    """Wait for the replicas to hold the batch's outcomes. Unconfirmed, they are recorded
    all the same (the sends happened): a failover that loses them re-sends those
    deliveries, which receivers dedupe by webhook-id."""
    try:
        confirm_replicas(client, what=f"{count} delivery outcomes")
    except StoreError as exc:
        UNREPLICATED_WRITES.labels("delivery-outcome").inc(count)
        log.warning("%s; a failover now could re-send them", exc)


def _dead_notices(
    done: Sequence[Done], *, changed: Sequence[str], stored: Mapping[int, dict[str, Any]]
) -> list[operational.Notice]:
    """A `delivery-dead` notice per delivery this batch made dead, but not for test sends,
    nor for deliveries of relay's own events (their dead letters would feed on each other)."""
    now_dead = set(changed)
    notices = []
    for item in done:
        delivery, record = item.prepared.delivery, item.prepared.record
        if item.finish.state is not DeliveryState.DEAD or delivery.id not in now_dead:
            continue
        if record is None or delivery.kind is DeliveryKind.TEST:
            continue
        event = stored.get(delivery.event_id) if delivery.event_id is not None else None
        if operational.is_operational(event):
            continue
        details = {"deliveryId": delivery.id, "eventId": delivery.event_id}
        details["reason"] = item.finish.reason
        notices.append(operational.Notice(operational.DELIVERY_DEAD, record, details))
    return notices


def _load_events(client: Redis, claimed: Sequence[Delivery]) -> dict[int, dict[str, Any]]:
    wanted = sorted({d.event_id for d in claimed if d.event_id is not None})
    found = events.get_events(client, ids=wanted)
    return {event_id: event for event_id, event in zip(wanted, found, strict=True) if event}


class _Renders:
    """What a batch renders once: each event's body per format, and its audit-log entry."""

    def __init__(
        self, stored: Mapping[int, dict[str, Any]], catalog: Catalog, *, base_url: str
    ) -> None:
        self.stored = stored
        self.catalog = catalog
        self.base_url = base_url
        self.bodies: dict[tuple[int, str, str], bytes] = {}
        self.targets: dict[int, EventTarget] = {}
        self.contexts: dict[int, EventContext] = {}

    def webhook_parts(
        self, event_id: int, event: Mapping[str, Any], config: Mapping[str, Any]
    ) -> payloads.WebhookParts:
        """Body, content type and headers; the body made once per format and template."""
        key = (event_id, str(config.get("format")), str(config.get("bodyTemplate") or ""))
        parts = payloads.webhook_parts(
            event, config, target=self.target(event_id, event), body=self.bodies.get(key)
        )
        self.bodies[key] = parts.body
        return parts

    def target(self, event_id: int, event: Mapping[str, Any]) -> EventTarget:
        target = self.targets.get(event_id)
        if target is None:
            target = self.targets[event_id] = map_event(event)
        return target

    def context(self, event_id: int, event: Mapping[str, Any]) -> EventContext:
        context = self.contexts.get(event_id)
        if context is None:
            entry = audit_entry(event, target=self.target(event_id, event), base_url=self.base_url)
            context = self.contexts[event_id] = EventContext(entry)
        return context


def _prepare(
    delivery: Delivery, record: SubscriptionRecord | None, renders: _Renders, now: int
) -> Prepared:
    if record is None:
        return _skip(delivery, None, "subscription deleted")
    if not record.on and delivery.kind is not DeliveryKind.TEST:
        return _skip(delivery, record, "subscription is off")
    if delivery.kind is DeliveryKind.TEST:
        event: dict[str, Any] | None = payloads.test_event(now_ms=delivery.created_at)
    else:
        event = renders.stored.get(delivery.event_id) if delivery.event_id is not None else None
    if event is None:
        return _dead(delivery, record, "event is no longer recorded (retention)")
    event_id = delivery.event_id or 0
    if record.integration_key != WEBHOOK:
        return _prepare_integration(delivery, record, renders, event_id, event)
    try:
        parts = renders.webhook_parts(event_id, event, record.config)
    except PermanentDeliveryError as exc:  # a body template that fails for this event
        return _dead(delivery, record, str(exc))
    return Prepared(delivery, record, request=build_request(delivery, record, parts, now_ms=now))


def _prepare_integration(
    delivery: Delivery,
    record: SubscriptionRecord,
    renders: _Renders,
    event_id: int,
    event: Mapping[str, Any],
) -> Prepared:
    """An integration's request rendered from its manifest; dead when it cannot render
    (the same template and config would fail again)."""
    manifest = renders.catalog.get(record.integration_key)
    if manifest is None:
        return _dead(delivery, record, f"integration {record.integration_key} is not installed")
    test = delivery.kind is DeliveryKind.TEST
    try:
        rendered = render_request(
            manifest, record.config, renders.context(event_id, event), validation=test
        )
    except RenderFailure as exc:
        return _dead(delivery, record, str(exc))
    request = OutboundRequest(
        url=rendered.url,
        body=rendered.body,
        headers=rendered.headers,
        method=rendered.method,
        verify_tls=rendered.verify_tls,
    )
    return Prepared(delivery, record, request=request)


def build_request(
    delivery: Delivery, record: SubscriptionRecord, parts: payloads.WebhookParts, *, now_ms: int
) -> OutboundRequest:
    """The signed POST of the body, with the subscription's headers; webhook-id = delivery id,
    `X-Relay-Attempt` = this attempt's number (1 for the first)."""
    headers = {**parts.headers, "Content-Type": parts.content_type}
    headers.update(
        signing.sign(
            msg_id=delivery.id,
            timestamp=now_ms // 1000,
            body=parts.body,
            secrets=signing.active_secrets(record, now_ms=now_ms),
        )
    )
    headers[payloads.ATTEMPT_HEADER] = str(delivery.attempts + 1)
    url = str(record.config.get("url", ""))
    return OutboundRequest(
        url=url,
        body=parts.body,
        headers=headers,
        local_listener=reaches_listener(url, record.local_listener),
    )


def _skip(delivery: Delivery, record: SubscriptionRecord | None, reason: str) -> Prepared:
    finish = Finish(delivery.id, DeliveryState.SKIPPED, reason=reason, sub_id=delivery.sub_id)
    return Prepared(delivery, record, decided=finish)


def _dead(delivery: Delivery, record: SubscriptionRecord | None, reason: str) -> Prepared:
    finish = Finish(delivery.id, DeliveryState.DEAD, reason=reason, sub_id=delivery.sub_id)
    return Prepared(delivery, record, decided=finish)


def _decide(
    item: Prepared, result: SendResult, *, settings: Settings, at_ms: int, now: int
) -> Done:
    outcome = classify(result)
    attempt = Attempt(
        at=at_ms,
        status_code=result.status_code,
        duration_ms=int(result.duration_ms),
        error=result.error,
        response_body=result.response_body,
        outcome=outcome.value,
    )
    finish = decide(item.delivery, outcome, result, settings=settings, now_ms=now)
    counted = item.delivery.kind is not DeliveryKind.TEST  # test sends leave the circuit alone
    finish = replace(finish, attempt=attempt, reach=reach(result) if counted else Reach.NONE)
    return Done(item, result, outcome, finish)


def decide(
    delivery: Delivery, outcome: Outcome, result: SendResult, *, settings: Settings, now_ms: int
) -> Finish:
    """Delivered, retry at T, gone or dead: the next state after one attempt."""
    if outcome is Outcome.DELIVERED:
        return Finish(delivery.id, DeliveryState.DELIVERED, sub_id=delivery.sub_id)
    if delivery.kind is DeliveryKind.TEST:
        return Finish(
            delivery.id,
            DeliveryState.DEAD,
            reason="test deliveries are tried once",
            sub_id=delivery.sub_id,
        )
    if outcome is Outcome.GONE:
        return Finish(
            delivery.id,
            DeliveryState.GONE,
            reason=subscription_health.GONE_REASON,
            sub_id=delivery.sub_id,
        )
    if outcome is Outcome.RETRY:
        attempt = delivery.attempts + 1
        delay = next_delay(attempt=attempt, retry_after=result.retry_after, settings=settings)
        if delay is not None:
            return Finish(
                delivery.id,
                DeliveryState.FAILED,
                next_attempt_at=now_ms + int(delay * 1000),
                sub_id=delivery.sub_id,
            )
        reason = f"gave up after {attempt} attempts"
        return Finish(delivery.id, DeliveryState.DEAD, reason=reason, sub_id=delivery.sub_id)
    reason = _failure_text(result)
    return Finish(delivery.id, DeliveryState.DEAD, reason=reason, sub_id=delivery.sub_id)


def _failure_text(result: SendResult) -> str:
    if result.error:
        return result.error
    return f"receiver answered {result.status_code}, which is not retried"
