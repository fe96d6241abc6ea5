"""Why a subscription does or does not receive events: explain one, preview statements."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from relay.api.deps import ReaderDep, SettingsDep, StoreDep
from relay.api.schemas import AUTH_ERRORS, error_responses
from relay.errors import NotFoundError
from relay.store import events, subscriptions
from relay.subscriptions.explain import (
    Explanation,
    ParsedPolicies,
    PolicyPreview,
    PolicyPreviewPost,
    explain,
    preview,
    preview_statements,
)

router = APIRouter(tags=["policies"], responses=AUTH_ERRORS)

# relay ids come from a Redis counter, a signed 64-bit integer
MAX_EVENT_ID = 2**63 - 1
EventId = Annotated[int, Query(ge=1, le=MAX_EVENT_ID, description="a recorded event's relay id")]


async def get_parsed_policies(request: Request) -> ParsedPolicies:
    """The app's parsed stored policies, made at the first explanation."""
    state = request.app.state
    if getattr(state, "parsed_policies", None) is None:
        settings = state.settings
        state.parsed_policies = ParsedPolicies(max_entries=settings.max_total_policy_entries)
    policies: ParsedPolicies = state.parsed_policies
    return policies


ParsedPoliciesDep = Annotated[ParsedPolicies, Depends(get_parsed_policies)]


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
    policies: ParsedPoliciesDep,
    _: ReaderDep,
) -> Explanation:
    """Whether a subscription receives a recorded event, and why, statement by statement."""
    record = subscriptions.get_subscription(client, sub_id=id)
    if record is None or record.integration_key != integrationKey:
        raise NotFoundError(f"no subscription {id}")
    [event] = events.get_events(client, ids=[eventId])
    if event is None:
        raise NotFoundError(f"no event {eventId}")
    return explain(record, event, settings.critical_set, parse=policies.get)


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
