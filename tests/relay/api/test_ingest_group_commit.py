"""Ingest's group commit and fast path: requests recorded together keep their own outcomes."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.api.runtime import runtime_of
from relay.ingest.writer import INGEST_ROLES
from relay.settings import Settings
from relay.store import events, keys, tokens
from relay.store.client import Redis
from relay.store.events import Recorded, Refused
from relay.store.tokens import Role


def _event(producer_id: int | str, **fields: Any) -> dict[str, Any]:
    return {"id": producer_id, "type": "feature-created", "createdBy": "a@b.c", **fields}


def _token(client: Redis, role: Role) -> tuple[str, str]:
    info, secret = tokens.create_token(client, name=role.value, role=role)
    return info.id, secret


def test_one_call_records_each_request_or_refuses_it_whole(redis_client: Redis) -> None:
    ingest_id, ingest_secret = _token(redis_client, Role.INGEST)
    _, reader_secret = _token(redis_client, Role.READER)
    revoked_id, revoked_secret = _token(redis_client, Role.WRITER)
    assert tokens.delete_token(redis_client, token_id=revoked_id)
    requests = [
        events.prepare(
            [_event(1), _event(2)], source="", token_hash_key=tokens.hash_key(ingest_secret)
        ),
        events.prepare([_event(3)], source="", token_hash_key=tokens.hash_key(reader_secret)),
        events.prepare([_event(4)], source="pull", token_hash_key=tokens.hash_key(revoked_secret)),
        events.prepare([_event(5)], source="pull"),  # checked by the caller already
    ]
    outcomes = events.record_requests(redis_client, requests, allowed_roles=INGEST_ROLES)

    assert outcomes[1] == Refused(role="reader")
    assert outcomes[2] == Refused(role=None)
    first, last = outcomes[0], outcomes[3]
    assert isinstance(first, Recorded) and isinstance(last, Recorded)
    assert first.ids == [1, 2] and first.new_ids == [1, 2]
    assert first.source == ingest_id  # no source asked for: the token's id
    assert last.ids == [3] and last.source == "pull"
    stored = events.get_events(redis_client, ids=[1, 2, 3, 4])
    assert [e and e["producerId"] for e in stored] == [1, 2, 5, None]
    assert [e and e["source"] for e in stored[:3]] == [ingest_id, ingest_id, "pull"]
    assert redis_client.zcard(keys.EVENTS_ALL) == 3  # nothing of the refused requests


def test_dedupe_spans_the_requests_of_one_call(redis_client: Redis) -> None:
    requests = [
        events.prepare([_event("a"), _event("b")], source="s"),
        events.prepare([_event("b"), _event("c")], source="s"),  # b: a re-send
        events.prepare([_event("b")], source="other"),  # another source: its own event
    ]
    outcomes = events.record_requests(redis_client, requests)
    assert [(o.ids, o.new_ids) for o in outcomes if isinstance(o, Recorded)] == [
        ([1, 2], [1, 2]),
        ([2, 3], [3]),
        ([4], [4]),
    ]
    again = events.record_requests(redis_client, requests[1:2])
    assert again == [Recorded(ids=[2, 3], new_ids=[], source="s")]


def test_a_document_keeps_every_field_and_gets_the_source_last(redis_client: Redis) -> None:
    posted = _event(7, source="spoofed", producerId="spoofed", data={"text": 'é "q" \n'})
    [outcome] = events.record_requests(redis_client, [events.prepare([posted], source="s")])
    assert isinstance(outcome, Recorded)
    [text] = events.get_event_documents(redis_client, ids=outcome.ids)
    assert text is not None and text.endswith(',"source":"s"}')
    stored = json.loads(text)
    assert stored["id"] == outcome.ids[0] and stored["producerId"] == 7
    assert stored["data"] == posted["data"] and stored["source"] == "s"


def test_concurrent_posts_with_good_and_bad_tokens_each_get_their_answer(
    live_api: str, redis_client: Redis
) -> None:
    _, ingest_secret = _token(redis_client, Role.INGEST)
    _, reader_secret = _token(redis_client, Role.READER)
    callers = {"ingest": ingest_secret, "reader": reader_secret, "bogus": "rly_not-a-token"}
    expected = {"ingest": 202, "reader": 403, "bogus": 401}

    def post(n: int) -> tuple[str, int, Any]:
        kind = ("ingest", "reader", "bogus")[n % 3]
        response = httpx.post(
            f"{live_api}/api/events",
            json=_event(n, featureName=f"f{n}"),
            headers={"Authorization": callers[kind]},
            timeout=30,
        )
        return kind, response.status_code, response.json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(90)))

    assert [status for _, status, _ in answers] == [expected[kind] for kind, _, _ in answers]
    ids = sorted(i for kind, _, body in answers if kind == "ingest" for i in body["ids"])
    assert ids == list(range(1, 31))  # every accepted event once, nothing of the others
    assert redis_client.zcard(keys.EVENTS_ALL) == 30
    refused = {body["code"] for kind, _, body in answers if kind != "ingest"}
    assert refused == {"forbidden", "unauthorized"}


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [(None, 401, "unauthorized"), (Role.READER, 403, "forbidden"), (Role.INGEST, 400, None)],
)
def test_a_bad_body_is_judged_after_the_token(
    app_client: TestClient, redis_client: Redis, role: Role | None, status: int, code: str | None
) -> None:
    secret = _token(redis_client, role)[1] if role else "rly_unknown"
    response = app_client.post(
        "/api/events",
        content=b'{"type": "x", "createdBy": ',
        headers={"Authorization": secret, "Content-Type": "application/json"},
    )
    assert response.status_code == status
    assert response.json()["code"] == (code or "invalid_request")


def test_the_route_serves_what_the_fast_path_passes_on(
    settings: Settings, redis_client: Redis
) -> None:
    """Behind a path prefix (root_path) the FastAPI route answers, with the same result."""
    ingest_id, secret = _token(redis_client, Role.INGEST)
    app = create_app(settings, redis=redis_client)
    with TestClient(app, root_path="/relay") as client:
        response = client.post(
            "/relay/api/events", json=[_event(1), _event(1)], headers={"Authorization": secret}
        )
        bad = client.post(
            "/relay/api/events", json=[{"type": 1}], headers={"Authorization": secret}
        )
    assert response.status_code == 202 and response.json() == {"ids": [1, 1]}
    assert bad.status_code == 400 and bad.json()["errors"][0]["attribute"] == "[0].type"
    [stored] = events.get_events(redis_client, ids=[1])
    assert stored is not None and stored["source"] == ingest_id


def test_the_writer_stops_with_the_app(settings: Settings, redis_client: Redis) -> None:
    app = create_app(settings, redis=redis_client)
    with TestClient(app) as client:
        headers = {"Authorization": settings.admin_token or ""}
        assert client.post("/api/events", json=_event(1), headers=headers).status_code == 202
        writer = runtime_of(app).ingest_writer
    assert app.state.runtime is None
    assert not any(thread.is_alive() for thread in writer._threads)


def test_an_unreachable_redis_is_503_for_every_request_of_the_call(
    client_without_redis: TestClient,
) -> None:
    answers = [
        client_without_redis.post(
            "/api/events", json=_event(n), headers={"Authorization": "rly_any"}
        )
        for n in range(3)
    ]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [
        (503, "service_unavailable")
    ] * 3
