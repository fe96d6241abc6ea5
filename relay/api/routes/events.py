"""Ingest (`POST /api/events`) and Unleash's Events API over the recorded events."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, TypeAdapter

from relay.api.deps import IngestCallerDep, ReaderDep, RuntimeDep, StoreDep
from relay.api.routes.ingest import record_posted
from relay.api.schemas import AUTH_ERRORS, error_responses
from relay.ingest.unleash_event import UnleashEvent
from relay.store import events as event_store
from relay.store.events import EventPage

router = APIRouter(tags=["events"], responses=AUTH_ERRORS)

DEFAULT_LIMIT = 100
# Unleash answers a project's or a toggle's events all at once; the relay answers the newest
# MAX_LIMIT of them (100,000 events were 60 MB in one answer) and `offset` pages further
MAX_LIMIT = 1000


class EventIds(BaseModel):
    """The relay id of each posted event, in order (the first id for a re-sent event)."""

    ids: list[int]


class RecordedEvent(BaseModel):
    """An event as recorded: as posted, `id` the relay id, `producerId` the producer's."""

    model_config = ConfigDict(extra="allow")

    id: int
    type: str
    createdBy: str
    createdAt: str
    source: str
    producerId: int | str | None = None


class Events(BaseModel):
    version: int = 1
    events: list[RecordedEvent]
    totalEvents: int


class ToggleEvents(Events):
    toggleName: str


SourceQuery = Annotated[
    str | None, Query(description="events' source for dedupe; default: the token's id")
]
Limit = Annotated[int | None, Query(ge=1, le=MAX_LIMIT, description="at most this many")]
# bounded: Redis refuses ranges past a 64-bit integer (found by tests/relay/api/test_fuzz.py)
MAX_OFFSET = 10**15
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="skip this many, newest first")]


def _request_body_schema() -> dict[str, Any]:
    """The body's JSON schema with its `$defs` inlined (the route declares it by hand)."""
    schema = TypeAdapter(UnleashEvent | list[UnleashEvent]).json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {"required": True, "content": {"application/json": {"schema": inline(schema)}}}


@router.post(
    "/api/events",
    status_code=202,
    response_model=EventIds,
    responses=error_responses(413, 503),
    openapi_extra={"requestBody": _request_body_schema()},
)
async def post_events(
    request: Request,
    runtime: RuntimeDep,
    caller: IngestCallerDep,
    source: SourceQuery = None,
) -> Response:
    """Record one Unleash event or an array of up to 1000, once each."""
    # relay.api.routes.ingest.IngestFastPath answers these requests before FastAPI routes them;
    # this route documents the operation and serves any request the fast path passes on.
    # The body is read here, not parsed by FastAPI: relay.ingest.unleash_event validates it
    # in one pass.
    body = await request.body()
    answer = await record_posted(runtime, caller, source=source, body=body)
    return Response(answer, 202, media_type="application/json")


@router.get("/api/admin/events", response_model=Events)
def list_events(
    client: StoreDep,
    _: ReaderDep,
    project: Annotated[str | None, Query(description="only this project's events")] = None,
    limit: Limit = None,
    offset: Offset = 0,
) -> Response:
    """The last 100 events, newest first; with `project`, that project's (1000 at most)."""
    if limit is None:
        limit = DEFAULT_LIMIT if project is None else MAX_LIMIT
    page = event_store.event_page(client, project=project, offset=offset, limit=limit)
    return _events_response(page)


@router.get("/api/admin/events/{featureName}", response_model=ToggleEvents)
def list_toggle_events(
    featureName: str,  # Unleash's own parameter name
    client: StoreDep,
    _: ReaderDep,
    limit: Limit = None,
    offset: Offset = 0,
) -> Response:
    """The events of one feature toggle, newest first (1000 at most; `offset` pages further)."""
    page = event_store.event_page(
        client, feature=featureName, offset=offset, limit=limit or MAX_LIMIT
    )
    return _events_response(page, toggle_name=featureName)


def _events_response(page: EventPage, *, toggle_name: str | None = None) -> Response:
    # the stored JSON goes out as it is: events come back exactly as recorded
    head = '{"version":1,'
    if toggle_name is not None:
        head += f'"toggleName":{json.dumps(toggle_name)},'
    text = f'{head}"events":[{",".join(page.documents)}],"totalEvents":{page.total}}}'
    return Response(text, 200, media_type="application/json")
