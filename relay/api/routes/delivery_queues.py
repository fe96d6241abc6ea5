"""Deliveries of every subscription: the dead letters and the due queue, a page at a time."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from relay.api.deps import ReaderDep, StoreDep
from relay.api.schemas import AUTH_ERRORS
from relay.errors import FieldProblem, InvalidRequestError
from relay.store import subscriptions
from relay.store.client import Redis
from relay.store.deliveries import Attempt
from relay.store.queued_deliveries import Position, Queue, QueuedDelivery, queue_length, queue_page
from relay.store.subscriptions import SubscriptionRecord
from relay.store.tokens import Capability
from relay.subscriptions.redaction import Redactor, redactor_for

router = APIRouter(prefix="/api/v2/deliveries", tags=["deliveries"], responses=AUTH_ERRORS)

MAX_LIMIT: Final = 200
_MAX_CURSOR: Final = 300  # characters: a score of 16 digits, ':', a delivery id


class ListedState(StrEnum):
    DEAD = "dead"  # the dead letters, newest first
    PENDING = "pending"  # still to deliver: the due queue, soonest first


_QUEUES = {ListedState.DEAD: Queue.DEAD, ListedState.PENDING: Queue.DUE}


class LastAttemptRep(BaseModel):
    """A delivery's last POST; what the receiver or the sender said, for writers only."""

    at: int
    statusCode: int | None = None
    durationMs: int
    outcome: str
    error: str | None = None
    responseBody: str | None = None


class QueuedDeliveryRep(BaseModel):
    """A delivery of any subscription, with its subscription's key and name (None once the
    subscription is deleted)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id")
    kind: str
    subscriptionId: str
    integrationKey: str | None = None
    subscriptionName: str | None = None
    eventId: int | None = None
    state: str
    reason: str | None = None
    attemptCount: int
    createdAt: int
    updatedAt: int
    queuedAt: int = Field(description="dead letters: when it died; pending: when it is due")
    lastAttempt: LastAttemptRep | None = None


class QueuedDeliveries(BaseModel):
    """A page of a queue; `next` is the `after` of the next page (absent on the last)."""

    items: list[QueuedDeliveryRep]
    totalCount: int = Field(description="deliveries in the queue now, on every page")
    next: str | None = None


@router.get("", response_model=QueuedDeliveries, response_model_exclude_none=True)
def list_queued_deliveries(
    client: StoreDep,
    caller: ReaderDep,
    state: Annotated[
        ListedState,
        Query(description="dead: the dead letters, newest first; pending: the due queue"),
    ] = ListedState.DEAD,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    after: Annotated[
        str | None, Query(max_length=_MAX_CURSOR, description="the `next` of the page before")
    ] = None,
) -> QueuedDeliveries:
    """List every subscription's dead letters (newest first) or due deliveries (soonest first).

    Reads relay:dead or relay:due, then each listed delivery's record and last attempt in
    one round trip, and each of their subscriptions once.
    """
    queue = _QUEUES[state]
    page = queue_page(client, queue=queue, limit=limit, after=_cursor(after))
    shown = _Shown(client, trusted=caller.can(Capability.WRITE))
    return QueuedDeliveries(
        items=[shown.delivery(item) for item in page.items],
        totalCount=queue_length(client, queue=queue),
        next=f"{page.next.score}:{page.next.delivery_id}" if page.next else None,
    )


def _cursor(after: str | None) -> Position | None:
    if after is None:
        return None
    score, _, delivery_id = after.partition(":")
    if not (score.isdigit() and score.isascii() and len(score) <= 16 and delivery_id):
        raise InvalidRequestError(
            "`after` is not a cursor of this list",
            [FieldProblem("after", "give the `next` of the page before")],
        )
    return Position(int(score), delivery_id)


class _Shown:
    """Deliveries as one caller sees them, each subscription read once. Receiver and sender
    text is masked with the subscription's credentials for writers and left out for
    readers, as the subscription's own deliveries show it (relay/subscriptions/views.py);
    the relay's reason is masked for both, and left out when the subscription is gone (its
    credentials cannot be masked any more)."""

    def __init__(self, client: Redis, *, trusted: bool) -> None:
        self.client = client
        self.trusted = trusted
        self._records: dict[str, SubscriptionRecord | None] = {}
        self._redactors: dict[str, Redactor] = {}

    def delivery(self, item: QueuedDelivery) -> QueuedDeliveryRep:
        record = self._record(item.sub_id)
        return QueuedDeliveryRep(
            id=item.position.delivery_id,
            kind=item.kind,
            subscriptionId=item.sub_id,
            integrationKey=record.integration_key if record else None,
            subscriptionName=record.name if record else None,
            eventId=item.event_id,
            state=item.state,
            reason=self._masked(record, item.reason),
            attemptCount=item.attempts,
            createdAt=item.created_at,
            updatedAt=item.updated_at,
            queuedAt=item.position.score,
            lastAttempt=self._attempt(item.last_attempt, record),
        )

    def _attempt(
        self, attempt: Attempt | None, record: SubscriptionRecord | None
    ) -> LastAttemptRep | None:
        if attempt is None:
            return None
        return LastAttemptRep(
            at=attempt.at,
            statusCode=attempt.status_code,
            durationMs=attempt.duration_ms,
            outcome=attempt.outcome,
            error=self._masked(record, attempt.error) if self.trusted else None,
            responseBody=self._masked(record, attempt.response_body) if self.trusted else None,
        )

    def _masked(self, record: SubscriptionRecord | None, text: str | None) -> str | None:
        """`text` masked with the subscription's credentials; None without text or record."""
        if not text or record is None:
            return None
        # a redactor is built once per subscription, and only for text to mask: building
        # one costs more than using it
        if record.id not in self._redactors:
            self._redactors[record.id] = redactor_for(record)
        return self._redactors[record.id](text)

    def _record(self, sub_id: str) -> SubscriptionRecord | None:
        if sub_id not in self._records:
            found = subscriptions.get_subscription(self.client, sub_id=sub_id) if sub_id else None
            self._records[sub_id] = found
        return self._records[sub_id]
