"""Operator endpoints for a subscription's deliveries: list, retry, replay, test."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool

from relay.api.deps import RuntimeDep, SettingsDep, StoreDep, WriterDep
from relay.api.schemas import AUTH_ERRORS, error_responses
from relay.clock import now_ms, rfc3339_ms
from relay.deliveries import replay as replays
from relay.errors import ConflictError, FieldProblem, InvalidRequestError, NotFoundError
from relay.settings import Settings
from relay.store import deliveries
from relay.store.client import Redis
from relay.store.deliveries import Attempt, Delivery, DeliveryState
from relay.store.subscriptions import SubscriptionRecord, get_subscription
from relay.subscriptions.redaction import Redactor, redactor_for
from relay.tasks import Producer

router = APIRouter(prefix="/api/v2/integrations", tags=["deliveries"], responses=AUTH_ERRORS)

# each delivery carries up to ATTEMPTS_KEPT (50) attempts of about 1 KB: 100 of them ~5 MB
MAX_PAGE = 100
TEST_WAIT_S = 20.0  # how long `test` waits for the worker's first attempt
# `test` calls waiting at once per API process (on the event loop, no thread held);
# past this a call is answered 202 at once with the delivery to poll
TEST_WAITERS = 16
_POLL_S = 0.05  # the first pause between looks at a test delivery, doubled up to _POLL_MAX_S
_POLL_MAX_S = 0.25


class AttemptRep(BaseModel):
    """One POST to the receiver."""

    at: int
    statusCode: int | None
    durationMs: int
    error: str | None
    responseBody: str
    outcome: str


class DeliveryRep(BaseModel):
    """One (event, subscription) delivery; `_id` is the `webhook-id` the receiver sees."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id")
    kind: str
    subscriptionId: str
    eventId: int | None
    state: DeliveryState
    reason: str | None = None
    attemptCount: int
    createdAt: int
    updatedAt: int
    nextAttemptAt: int | None = None
    deliveredAt: int | None = None
    attempts: list[AttemptRep]


class Deliveries(BaseModel):
    items: list[DeliveryRep]
    totalCount: int


class ReplayPost(BaseModel):
    """A createdAt range, ends included: milliseconds since the epoch or RFC 3339."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: StrictInt | str = Field(alias="from")
    to: StrictInt | str


class Replay(BaseModel):
    count: int
    ids: list[str]


@router.get(
    "/{integrationKey}/{id}/deliveries",
    response_model=Deliveries,
    response_model_exclude_none=True,
    responses=error_responses(404),
)
def list_deliveries(
    integrationKey: str,
    id: str,
    client: StoreDep,
    _: WriterDep,
    state: Annotated[
        DeliveryState | None, Query(description="only deliveries in this state")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Deliveries:
    """List a subscription's recent deliveries, newest first, with their attempts."""
    record = _subscription(client, integrationKey, id)
    found = deliveries.list_deliveries(client, sub_id=id, state=state, limit=limit)
    redact = redactor_for(record)
    items = [_rep(delivery, attempts, redact) for delivery, attempts in found]
    return Deliveries(items=items, totalCount=len(items))


@router.post(
    "/{integrationKey}/{id}/deliveries/{deliveryId}/retry",
    status_code=202,
    response_model=DeliveryRep,
    response_model_exclude_none=True,
    responses=error_responses(404, 409),
)
def retry_delivery(
    integrationKey: str,
    id: str,
    deliveryId: str,
    client: StoreDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    _: WriterDep,
) -> DeliveryRep:
    """Revive a dead or failing delivery: attempts reset, due now."""
    record = _subscription(client, integrationKey, id)
    delivery = deliveries.get_delivery(client, delivery_id=deliveryId)
    if delivery is None or delivery.sub_id != record.id:
        raise NotFoundError(f"no delivery {deliveryId} for subscription {id}")
    if delivery.state is DeliveryState.DELIVERED:
        raise ConflictError(f"delivery {deliveryId} was delivered", code="already_delivered")
    _require_on(record)
    now = now_ms()
    due_at = now + int(settings.delivery_lease * 1000)
    if deliveries.revive(client, delivery_id=deliveryId, now_ms=now, due_at_ms=due_at) is None:
        raise NotFoundError(f"no delivery {deliveryId} for subscription {id}")
    runtime.producer.deliver([deliveryId])
    return _current(client, deliveryId, record)


@router.post(
    "/{integrationKey}/{id}/replay",
    status_code=202,
    response_model=Replay,
    responses=error_responses(404, 409),
)
def replay_events(
    integrationKey: str,
    id: str,
    body: ReplayPost,
    client: StoreDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    _: WriterDep,
) -> Replay:
    """Re-send the recorded events of a createdAt range that the policy includes."""
    record = _subscription(client, integrationKey, id)
    start, end = _moment(body.from_, "from"), _moment(body.to, "to")
    if start > end:
        raise InvalidRequestError("`from` is after `to`", [FieldProblem("from", "after to")])
    _require_on(record)
    ids = replays.replay(
        client, record=record, start_ms=start, end_ms=end, settings=settings, now_ms=now_ms()
    )
    runtime.producer.deliver(ids)
    return Replay(count=len(ids), ids=ids)


@router.get(
    "/{integrationKey}/{id}/deliveries/{deliveryId}",
    response_model=DeliveryRep,
    response_model_exclude_none=True,
    responses=error_responses(404),
)
def get_delivery(
    integrationKey: str, id: str, deliveryId: str, client: StoreDep, _: WriterDep
) -> DeliveryRep:
    """Get one of a subscription's deliveries with its attempts (a pending test's, to poll)."""
    record = _subscription(client, integrationKey, id)
    delivery = deliveries.get_delivery(client, delivery_id=deliveryId)
    if delivery is None or delivery.sub_id != record.id:
        raise NotFoundError(f"no delivery {deliveryId} for subscription {id}")
    return _current(client, deliveryId, record)


@router.post(
    "/{integrationKey}/{id}/test",
    response_model=DeliveryRep,
    response_model_exclude_none=True,
    responses={
        202: {"model": DeliveryRep, "description": "not attempted yet: poll its Location"},
        **error_responses(404),
    },
)
async def test_subscription(
    integrationKey: str,
    id: str,
    response: Response,
    client: StoreDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    _: WriterDep,
) -> DeliveryRep:
    """Send a test event: 200 with its attempt once made, else 202 with the delivery to poll."""
    # the worker sends; the API holds no thread meanwhile (80 test calls waiting in
    # threads once took the whole pool, /healthz waited 29 s): Redis and the broker in short
    # pool calls, the wait on the event loop, and only TEST_WAITERS waits at once
    record, delivery_id = await run_in_threadpool(
        _start_test, client, integrationKey, id, settings, runtime.producer
    )
    if runtime.test_waiters < TEST_WAITERS:
        runtime.test_waiters += 1
        try:
            await _wait_for_attempt(client, delivery_id, settings)
        finally:
            runtime.test_waiters -= 1
    # masked with the credentials the test was sent with, even if the subscription is
    # changed or deleted meanwhile
    current = await run_in_threadpool(_current, client, delivery_id, record)
    if current.state is DeliveryState.PENDING:
        response.status_code = 202
        response.headers["Location"] = (
            f"{router.prefix}/{integrationKey}/{id}/deliveries/{delivery_id}"
        )
    return current


def _start_test(
    client: Redis, integration_key: str, sub_id: str, settings: Settings, producer: Producer
) -> tuple[SubscriptionRecord, str]:
    record = _subscription(client, integration_key, sub_id)
    delivery_id = replays.create_test_delivery(
        client, record=record, settings=settings, now_ms=now_ms()
    )
    producer.deliver([delivery_id])
    return record, delivery_id


async def _wait_for_attempt(client: Redis, delivery_id: str, settings: Settings) -> None:
    """Until the worker recorded the test's attempt, or the wait is over."""
    deadline = time.monotonic() + min(TEST_WAIT_S, settings.delivery_timeout + 5)
    pause = _POLL_S
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(pause, left))
        delivery = await run_in_threadpool(deliveries.get_delivery, client, delivery_id=delivery_id)
        if delivery is None or delivery.state is not DeliveryState.PENDING:
            return
        pause = min(pause * 2, _POLL_MAX_S)


def _subscription(client: Redis, integration_key: str, sub_id: str) -> SubscriptionRecord:
    record = get_subscription(client, sub_id=sub_id)
    if record is None or record.integration_key != integration_key:
        raise NotFoundError(f"no subscription {sub_id}")
    return record


def _require_on(record: SubscriptionRecord) -> None:
    if not record.on:
        raise ConflictError(
            f"subscription {record.id} is off; turn it on first", code="subscription_off"
        )


def _moment(value: int | str, attribute: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return rfc3339_ms(value)
    except ValueError as exc:
        raise InvalidRequestError(
            f"`{attribute}` is not a time", [FieldProblem(attribute, str(exc))]
        ) from None


def _current(client: Redis, delivery_id: str, record: SubscriptionRecord) -> DeliveryRep:
    """A delivery of `record` as it is now, masked with `record`'s credentials."""
    delivery = deliveries.get_delivery(client, delivery_id=delivery_id)
    if delivery is None:
        raise NotFoundError(f"no delivery {delivery_id}")
    attempts = deliveries.get_attempts(client, delivery_id=delivery_id)
    return _rep(delivery, attempts, redactor_for(record))


def _rep(delivery: Delivery, attempts: list[Attempt], redact: Redactor) -> DeliveryRep:
    """A delivery as shown; stored credentials masked in what the receiver and sender said."""
    return DeliveryRep(
        id=delivery.id,
        kind=delivery.kind.value,
        subscriptionId=delivery.sub_id,
        eventId=delivery.event_id,
        state=delivery.state,
        reason=redact(delivery.reason) or None,
        attemptCount=delivery.attempts,
        createdAt=delivery.created_at,
        updatedAt=delivery.updated_at,
        nextAttemptAt=delivery.next_attempt_at,
        deliveredAt=delivery.delivered_at,
        attempts=[_attempt_rep(a, redact) for a in attempts],
    )


def _attempt_rep(attempt: Attempt, redact: Redactor) -> AttemptRep:
    return AttemptRep(
        at=attempt.at,
        statusCode=attempt.status_code,
        durationMs=attempt.duration_ms,
        error=redact.optional(attempt.error),
        responseBody=redact(attempt.response_body),
        outcome=attempt.outcome,
    )
