"""Ingest (`POST /api/events`) and Unleash's Events API over the recorded events."""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, TypeAdapter
from starlette.concurrency import run_in_threadpool

from relay import metrics
from relay.api import fanout
from relay.api.deps import IngestDep, ReaderDep, StoreDep
from relay.api.schemas import AUTH_ERRORS, error_responses
from relay.settings import Settings
from relay.store import events as event_store
from relay.store.client import Redis
from relay.store.events import DAY_MS, EventPage
from relay.store.sources import check_source_name
from relay.unleash import UnleashEvent, parse_events

router = APIRouter(tags=["events"], responses=AUTH_ERRORS)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
INLINE_BODY_BYTES = 16 * 1024


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
    token: IngestDep,
    source: SourceQuery = None,
) -> Response:
    """Record one Unleash event or an array of up to 1000, once each."""
    if source is not None:
        check_source_name(source)
    # read here, not parsed by FastAPI: relay.unleash validates the bytes in one pass
    body = await request.body()
    client: Redis = request.app.state.redis
    settings: Settings = request.app.state.settings
    ingest = partial(
        _ingest, client, settings, body=body, source=source if source is not None else token.id
    )
    # A small body is recorded right here, on the event loop: its one Redis round trip
    # costs less than a threadpool hop, the largest cost of an ingest request otherwise.
    # Big batches (milliseconds of validation) go to the threadpool.
    ids = ingest() if len(body) <= INLINE_BODY_BYTES else await run_in_threadpool(ingest)
    return Response(json.dumps({"ids": ids}), 202, media_type="application/json")


def _ingest(client: Redis, settings: Settings, *, body: bytes, source: str) -> list[int]:
    parsed = parse_events(body)
    recorded = event_store.record(
        client,
        events=parsed,
        source=source,
        dedupe_ttl_ms=int(settings.retention_days * DAY_MS),
    )
    metrics.count_recorded(source, parsed, recorded)
    fanout.sender_for(settings).notify(recorded.new_ids)
    return recorded.ids


@router.get("/api/admin/events", response_model=Events)
def list_events(
    client: StoreDep,
    _: ReaderDep,
    project: Annotated[str | None, Query(description="only this project's events")] = None,
    limit: Limit = None,
    offset: Offset = 0,
) -> Response:
    """The last 100 events, newest first; with `project`, all of that project's events."""
    if limit is None and project is None:
        limit = DEFAULT_LIMIT
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
    """All events of one feature toggle, newest first."""
    page = event_store.event_page(client, feature=featureName, offset=offset, limit=limit)
    return _events_response(page, toggle_name=featureName)


def _events_response(page: EventPage, *, toggle_name: str | None = None) -> Response:
    # the stored JSON goes out as it is: events come back exactly as recorded
    head = '{"version":1,'
    if toggle_name is not None:
        head += f'"toggleName":{json.dumps(toggle_name)},'
    text = f'{head}"events":[{",".join(page.documents)}],"totalEvents":{page.total}}}'
    return Response(text, 200, media_type="application/json")
