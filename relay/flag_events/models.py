"""LaunchDarkly's flag-event representations (seed 001), and how a recorded event becomes one."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policies import map_event
from relay.flag_events.experiments import Iteration
from relay.flag_events.impact import Impact, ImpactSize
from relay.flag_events.listing import ListedEvent

# flag-event ids are uuid5(this, relay id): stable for a recorded event
FLAG_EVENT_NAMESPACE = uuid.UUID("1d7c9a52-8e0f-5b8e-a3c2-5f0d6e4b9a70")
JSON = "application/json"


class _Rep(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class Link(_Rep):
    href: str
    type: str = JSON


class FlagEventMemberRep(_Rep):
    id: str
    email: str
    firstName: str
    lastName: str


class VariationEvalSummary(_Rep):
    value: bool | str
    before: int
    after: int


class EvaluationsSummary(_Rep):
    variations: list[VariationEvalSummary]


class FlagEventImpactRep(_Rep):
    size: ImpactSize
    percentage: float
    reason: str
    evaluationsSummary: EvaluationsSummary


class FlagEventExperimentIteration(_Rep):
    id: str
    status: Literal["running", "stopped"]
    startedAt: int
    endedAt: int | None = None


class FlagEventExperiment(_Rep):
    key: str
    name: str
    iteration: FlagEventExperimentIteration


class FlagEventExperimentCollection(_Rep):
    totalCount: int
    items: list[FlagEventExperiment]


class FlagEventRep(_Rep):
    id: uuid.UUID
    projectId: str
    projectKey: str
    environmentId: str | None = None  # absent for global events (no environment)
    environmentKey: str | None = None
    flagKey: str
    eventType: str
    eventTime: int
    description: str
    auditLogEntryId: str
    member: FlagEventMemberRep | None = None
    actions: list[str]
    impact: FlagEventImpactRep
    experiments: FlagEventExperimentCollection | None = None


class FlagEventCollectionRep(_Rep):
    totalCount: int
    items: list[FlagEventRep]
    links: dict[str, Link] = Field(alias="_links")


def stable_id(*parts: str) -> str:
    """A 24-hex id (the shape of LaunchDarkly's ids) derived from keys."""
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:24]


def flag_event_rep(listed: ListedEvent) -> FlagEventRep:
    """The wire form of a listed event."""
    event = listed.event
    project, flag = str(event.get("project")), str(event.get("featureName"))
    environment = _text(event.get("environment"))
    target = map_event(event)
    return FlagEventRep(
        id=uuid.uuid5(FLAG_EVENT_NAMESPACE, str(event.get("id", listed.position.member))),
        projectId=stable_id("proj", project),
        projectKey=project,
        environmentId=stable_id("proj", project, "env", environment) if environment else None,
        environmentKey=environment,
        flagKey=flag,
        eventType=str(event.get("type")),
        eventTime=listed.position.time_ms,
        description=describe(event, target.title_verb),
        auditLogEntryId=listed.position.member,
        member=member_of(event),
        actions=list(target.ld_actions),
        impact=impact_rep(listed.impact),
        experiments=None if listed.iterations is None else experiments_rep(listed.iterations),
    )


def describe(event: dict[str, Any], title_verb: str) -> str:
    """`alice@example.com turned on the flag checkout.v2 in production`."""
    actor = _text(event.get("createdBy")) or "someone"
    text = f"{actor} {title_verb} {event.get('featureName')}"
    environment = _text(event.get("environment"))
    return f"{text} in {environment}" if environment else text


def member_of(event: dict[str, Any]) -> FlagEventMemberRep | None:
    """The member from Unleash's `createdBy` (and `createdByUserId` when it has one)."""
    author = _text(event.get("createdBy"))
    if author is None:
        return None
    user_id = event.get("createdByUserId")
    has_id = isinstance(user_id, int) and not isinstance(user_id, bool)
    local, at, _ = author.partition("@")
    first, _, last = re.sub(r"[._+-]", " ", local).strip().partition(" ")
    return FlagEventMemberRep(
        id=str(user_id) if has_id else stable_id("member", author),
        email=author if at else "",
        firstName=first.capitalize() if at else author,
        lastName=last.strip().capitalize() if at else "",
    )


def impact_rep(impact: Impact) -> FlagEventImpactRep:
    rows = [
        VariationEvalSummary(value=row.variation.value, before=row.before, after=row.after)
        for row in impact.variations
    ]
    return FlagEventImpactRep(
        size=impact.size,
        percentage=impact.percentage,
        reason=impact.reason,
        evaluationsSummary=EvaluationsSummary(variations=rows),
    )


def experiments_rep(iterations: tuple[Iteration, ...]) -> FlagEventExperimentCollection:
    items = [
        FlagEventExperiment(
            key=run.flag,
            name=f"{run.flag} in {run.environment}",
            iteration=FlagEventExperimentIteration(
                id=run.id,
                status=run.status,
                startedAt=run.started_at,
                endedAt=run.ended_at,
            ),
        )
        for run in iterations
    ]
    return FlagEventExperimentCollection(totalCount=len(items), items=items)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
