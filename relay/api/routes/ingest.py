"""`POST /api/events`: record posted events, on a short path past FastAPI's routing.

Ingest is the hot path: a producer such as Unleash's webhook addon posts every event on
its own. `record_posted` does the work (validate, hand the events to the group-commit
writer, count, ask for fan-out) and is all the route in relay/api/routes/events.py
calls. `IngestFastPath` sends matching requests to that same function straight from the
middleware stack: FastAPI's routing, dependency solving and response classes cost more
CPU than the rest of a small ingest request (bench/ingest.py). The FastAPI route stays
for the OpenAPI document and for any request the fast path does not take. Either way
the outer middleware applies (request metrics, body limit, rate-limit headers) and
errors get the answers of relay/api/errors.py.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from relay.api.deps import IngestCaller, ingest_caller, refusal
from relay.api.errors import error_response
from relay.api.middleware import BodyTooLargeError
from relay.api.runtime import ApiRuntime, runtime_of
from relay.errors import InvalidRequestError, PayloadTooLargeError
from relay.ingest.unleash_event import parse_events
from relay.observability import metrics
from relay.store import events as event_store
from relay.store.events import RecordRequest, Refused
from relay.store.sources import check_source_name
from relay.store.tokens import Capability

PATH = "/api/events"
# bodies up to this size (a batch of about 150 Unleash events) are validated on the event
# loop: a threadpool hop costs more than a millisecond of validation. Bigger ones in the pool.
INLINE_BODY_BYTES = 64 * 1024


async def record_posted(
    runtime: ApiRuntime, caller: IngestCaller, *, source: str | None, body: bytes
) -> bytes:
    """Record a posted body's events; the 202 answer's JSON (`{"ids": [...]}`)."""
    if source is not None:
        check_source_name(source)
    if caller.token is not None and source is None:
        source = caller.token.id
    prepare = partial(_prepare, body=body, source=source or "", token_hash_key=caller.hash_key)
    try:
        parsed, prepared = (
            prepare() if len(body) <= INLINE_BODY_BYTES else await run_in_threadpool(prepare)
        )
    except (InvalidRequestError, PayloadTooLargeError):
        await caller.check(runtime)  # a bad token is told so (401/403) before its bad body
        raise
    outcome = await runtime.ingest_writer.record(prepared)
    if isinstance(outcome, Refused):
        raise refusal(outcome.role, Capability.INGEST)
    metrics.count_recorded(outcome.source, parsed, outcome)
    runtime.fanout.notify(outcome.new_ids)
    return json.dumps({"ids": outcome.ids}).encode()


def _prepare(
    *, body: bytes, source: str, token_hash_key: str
) -> tuple[list[dict[str, Any]], RecordRequest]:
    parsed = parse_events(body)
    return parsed, event_store.prepare(parsed, source=source, token_hash_key=token_hash_key)


class IngestFastPath:
    """Answers `POST /api/events` itself; passes every other request on to the app."""

    def __init__(self, app: ASGIApp, *, route: BaseRoute) -> None:
        self.app = app
        self.route = route  # the FastAPI route: request metrics label by its path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        request = Request(scope, receive)
        try:
            # the token before the body: a stranger's body is never read
            caller = await ingest_caller(request, _header(scope, b"authorization"))
        except Exception as exc:
            await _answer_error(request, exc, send, close=True)
            return
        try:
            source = _query_value(scope, "source")
            body = await request.body()
            answer = await record_posted(runtime_of(scope["app"]), caller, source=source, body=body)
        except BodyTooLargeError:
            raise  # the body-limit middleware answers 413
        except ClientDisconnect:
            return  # gone, or timed out by the server (relay/api/server.py): nobody to answer
        except Exception as exc:
            await _answer_error(request, exc, send, close=False)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 202,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})


async def _answer_error(request: Request, exc: Exception, send: Send, *, close: bool) -> None:
    """Answer `exc` as the app's error handlers would; `close` when the body was not read
    (a sender still sending it would hold the connection)."""
    response = await error_response(request, exc)
    if close:
        response.headers["connection"] = "close"
    await response(request.scope, request.receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _query_value(scope: Scope, name: str) -> str | None:
    query = scope.get("query_string", b"")
    if not query:
        return None
    values = [v for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if k == name]
    return values[-1] if values else None
