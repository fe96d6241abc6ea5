"""LaunchDarkly's engineering-insights flag events (seed 001), over the recorded Unleash events."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request

from relay.api.deps import ReaderDep, StoreDep
from relay.api.runtime import runtime_of
from relay.api.schemas import AUTH_ERRORS
from relay.clock import now_ms
from relay.errors import FieldProblem, InvalidRequestError
from relay.flag_events.experiment_cache import ExperimentCache
from relay.flag_events.facts import Filters
from relay.flag_events.impact import ImpactSize
from relay.flag_events.listing import (
    DEFAULT_LIMIT,
    DEFAULT_WINDOW_MS,
    MAX_LIMIT,
    FlagEventPage,
    FlagEventQuery,
    list_flag_events,
)
from relay.flag_events.models import FlagEventCollectionRep, Link, flag_event_rep
from relay.store.flag_events import Position

PATH = "/api/v2/engineering-insights/flag-events"
EXPANSIONS = frozenset({"experiments"})

router = APIRouter(tags=["flag events"], responses=AUTH_ERRORS)


@router.get(PATH, response_model=FlagEventCollectionRep, response_model_exclude_none=True)
def get_flag_events(
    request: Request,
    client: StoreDep,
    _: ReaderDep,
    project_key: Annotated[str, Query(alias="projectKey", min_length=1)],
    environment_key: Annotated[str, Query(alias="environmentKey", min_length=1)],
    application_key: Annotated[str | None, Query(alias="applicationKey")] = None,
    query: Annotated[str | None, Query(description="the flag key")] = None,
    impact_size: Annotated[ImpactSize | None, Query(alias="impactSize")] = None,
    has_experiments: Annotated[bool | None, Query(alias="hasExperiments")] = None,
    include_global: Annotated[Literal["include", "exclude"], Query(alias="global")] = "include",
    expand: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    start_ms: Annotated[int | None, Query(alias="from")] = None,
    stop_ms: Annotated[int | None, Query(alias="to")] = None,
    after: str | None = None,
    before: str | None = None,
) -> FlagEventCollectionRep:
    """List flag events, newest first, with their measured impact."""
    problems: list[FieldProblem] = []
    stop = stop_ms if stop_ms is not None else now_ms()
    start = start_ms if start_ms is not None else stop - DEFAULT_WINDOW_MS
    if start > stop:
        problems.append(FieldProblem("from", f"must not be after to ({start} > {stop})"))
    filters = Filters(
        project=project_key,
        environment=environment_key,
        flag=query or None,
        apps=_apps(application_key, problems),
        impact_size=impact_size,
        has_experiments=has_experiments,
    )
    wanted = FlagEventQuery(
        filters=filters,
        start_ms=start,
        stop_ms=stop,
        limit=limit,
        include_global=include_global == "include",
        expand_experiments=_expansions(expand, problems),
        after=_cursor("after", after, problems),
        before=_cursor("before", before, problems),
    )
    if after is not None and before is not None:
        problems.append(FieldProblem("before", "give after or before, not both"))
    if problems:
        raise InvalidRequestError(
            "; ".join(f"{p.attribute}: {p.reason}" for p in problems), problems
        )
    page = list_flag_events(client, wanted, cache=_experiment_cache(request))
    return FlagEventCollectionRep(
        totalCount=page.total,
        items=[flag_event_rep(listed) for listed in page.items],
        links=_links(request, page, start, stop),
    )


def _experiment_cache(request: Request) -> ExperimentCache:
    """The process's experiment cache (its runtime's)."""
    return runtime_of(request.app).experiment_cache


def _apps(text: str | None, problems: list[FieldProblem]) -> frozenset[str] | None:
    if text is None:
        return None
    apps = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not apps:
        problems.append(FieldProblem("applicationKey", "give one or more application keys"))
    return apps


def _expansions(text: str | None, problems: list[FieldProblem]) -> bool:
    asked = {part.strip() for part in (text or "").split(",") if part.strip()}
    for unknown in sorted(asked - EXPANSIONS):
        problems.append(FieldProblem("expand", f"unknown expansion {unknown!r}: use experiments"))
    return "experiments" in asked


def _cursor(name: str, text: str | None, problems: list[FieldProblem]) -> Position | None:
    if text is None:
        return None
    position = Position.from_cursor(text)
    if position is None:
        problems.append(FieldProblem(name, "not a cursor from this API's _links"))
    return position


def _links(request: Request, page: FlagEventPage, start: int, stop: int) -> dict[str, Link]:
    """self as asked; next/prev pin the window so paging is not moved by new events."""
    links = {"self": Link(href=_href(request, {}))}
    window = {"from": str(start), "to": str(stop)}
    if page.older is not None:
        links["next"] = Link(href=_href(request, {**window, "after": page.older.cursor}))
    if page.newer is not None:
        links["prev"] = Link(href=_href(request, {**window, "before": page.newer.cursor}))
    return links


def _href(request: Request, changes: dict[str, str]) -> str:
    if not changes:
        query = request.url.query
        return f"{PATH}?{query}" if query else PATH
    dropped = {"from", "to", "after", "before"}
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in dropped]
    return f"{PATH}?{urlencode([*kept, *changes.items()])}"
