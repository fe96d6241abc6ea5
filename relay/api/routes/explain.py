"""Why a subscription does or does not receive events: explain one, preview statements."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from relay.api.deps import ReaderDep, RuntimeDep, SettingsDep, StoreDep
from relay.api.schemas import AUTH_ERRORS, error_responses
from relay.errors import NotFoundError
from relay.store import events, subscriptions
from relay.store.client import Redis
from relay.subscriptions.explain import (
    EventExplanations,
    Explanation,
    PolicyPreview,
    PolicyPreviewPost,
    explain,
    explain_all,
    preview,
    preview_statements,
)

router = APIRouter(tags=["policies"], responses=AUTH_ERRORS)

# relay ids come from a Redis counter, a signed 64-bit integer
MAX_EVENT_ID = 2**63 - 1
EventId = Annotated[int, Query(ge=1, le=MAX_EVENT_ID, description="a recorded event's relay id")]
EventIdInPath = Annotated[
    int, Path(ge=1, le=MAX_EVENT_ID, description="a recorded event's relay id")
]


@router.get(
    "/api/v2/integrations/{integrationKey}/{id}/explain",
    response_model=Explanation,
    responses=error_responses(404),
)
def explain_event(
    integrationKey: str,
    id: str,
    eventId: EventId,
    client: StoreDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    _: ReaderDep,
) -> Explanation:
    """Whether a subscription receives a recorded event, and why, statement by statement."""
    record = subscriptions.get_subscription(client, sub_id=id)
    if record is None or record.integration_key != integrationKey:
        raise NotFoundError(f"no subscription {id}")
    event = _recorded(client, eventId)
    return explain(record, event, settings.critical_set, parse=runtime.parsed_policies.get)


@router.get(
    "/api/v2/events/{eventId}/explanations",
    response_model=EventExplanations,
    responses=error_responses(404),
)
def explain_event_everywhere(
    eventId: EventIdInPath,
    client: StoreDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
    _: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> EventExplanations:
    """Every subscription's decision on a recorded event (a page of them, oldest
    subscription first), and how many include it: the console's event page."""
    event = _recorded(client, eventId)
    records = subscriptions.list_subscriptions(client)
    return explain_all(
        records,
        event,
        settings.critical_set,
        parse=runtime.parsed_policies.get,
        offset=offset,
        limit=limit,
    )


def _recorded(client: Redis, event_id: int) -> dict[str, Any]:
    [event] = events.get_events(client, ids=[event_id])
    if event is None:
        raise NotFoundError(f"no event {event_id}")
    return event


@router.post("/api/v2/policy-preview", response_model=PolicyPreview, responses=error_responses(413))
def preview_policy(
    body: PolicyPreviewPost, client: StoreDep, settings: SettingsDep, _: ReaderDep
) -> PolicyPreview:
    """Which of the most recent recorded events the statements would include, newest first."""
    statements = preview_statements(body.statements, settings)
    page = events.event_page(client, limit=body.limit)
    recent = [json.loads(document) for document in page.documents]
    items = preview(statements, recent, settings.critical_set)
    included = sum(1 for item in items if item.included)
    return PolicyPreview(items=items, included=included, total=len(items))
