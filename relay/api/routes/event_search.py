"""Unleash 8's event search, `GET /api/admin/search/events`, over the recorded events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

from relay.api.deps import ReaderDep, SettingsDep, StoreDep
from relay.api.schemas import AUTH_ERRORS
from relay.clock import rfc3339_of
from relay.ingest import event_search
from relay.ingest.event_search_parameters import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_VALUES,
    event_query,
    single_values,
)
from relay.ingest.event_summary import DEFAULT_UNLEASH_URL, describe
from relay.settings import Settings
from relay.store import sources
from relay.store.client import Redis

router = APIRouter(tags=["events"], responses=AUTH_ERRORS)


class SearchedEvent(BaseModel):
    """An event as recorded (`id` the relay id), with Unleash's `label` and markdown `summary`."""

    model_config = ConfigDict(extra="allow")

    id: int
    type: str
    createdBy: str
    createdAt: str
    label: str
    summary: str


class EventSearchResponse(BaseModel):
    events: list[SearchedEvent]
    total: int = Field(description="matching events; when not complete, those among the searched")
    complete: bool = Field(
        description="false when the search stopped at its bound before the oldest events: "
        "narrow it (dates, project, feature) to search further"
    )
    searchedBackTo: str | None = Field(
        description="when not complete, the createdAt of the oldest event searched"
    )


_OPERATORS = f"`IS:x` or `IS_ANY_OF:a,b` (at most {MAX_VALUES} values)"
Operator = Annotated[str | None, Query(description=_OPERATORS)]
_DAY = "`IS:YYYY-MM-DD`, a day in UTC, included"
Day = Annotated[str | None, Query(description=_DAY)]
_LIMIT = f"events to answer: 1-{MAX_LIMIT}, {DEFAULT_LIMIT} if not given"


@router.get("/api/admin/search/events", response_model=EventSearchResponse)
def search_events(
    request: Request,
    client: StoreDep,
    settings: SettingsDep,
    _: ReaderDep,
    query: Annotated[
        str | None, Query(description="case-insensitive text in data, tags or preData")
    ] = None,
    id: Operator = None,  # Unleash's parameter names
    groupId: Operator = None,
    feature: Operator = None,
    project: Operator = None,
    type: Operator = None,
    createdBy: Annotated[
        str | None, Query(description=f"the creator's user id: {_OPERATORS}")
    ] = None,
    environment: Operator = None,
    from_: Annotated[str | None, Query(alias="from", description=_DAY)] = None,
    to: Day = None,
    offset: Annotated[str | None, Query(description="matches to skip, newest first")] = None,
    limit: Annotated[str | None, Query(description=_LIMIT)] = None,
) -> Response:
    """Unleash's event search: recorded events newest first, each with its label and summary."""
    # the declared parameters document the operation; they are read here, once each
    params = single_values(
        {name: request.query_params.getlist(name) for name in request.query_params}
    )
    found = event_search.search(client, event_query(params))
    links = _unleash_urls(client, settings)
    fallback = (settings.unleash_url or DEFAULT_UNLEASH_URL).rstrip("/")
    for event in found.events:
        described = describe(event, unleash_url=links.get(str(event.get("source")), fallback))
        event["label"], event["summary"] = described.label, described.summary
    answer: dict[str, Any] = {"events": found.events, "total": found.total}
    answer["complete"] = found.complete
    back_to = found.searched_back_to_ms
    answer["searchedBackTo"] = None if back_to is None else rfc3339_of(back_to)
    return Response(to_json(answer), 200, media_type="application/json")


def _unleash_urls(client: Redis, settings: Settings) -> dict[str, str]:
    """The Unleash server each pull source reads, by source name (links in summaries)."""
    return {s.name: s.url.rstrip("/") for s in sources.sources_to_pull(client, settings=settings)}
