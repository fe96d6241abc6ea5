"""`POST /api/events`: 202 with relay ids, or a clear 4xx and nothing stored."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay import tasks
from relay.api.app import create_app
from relay.api.runtime import runtime_of
from relay.ingest import fanout_notifier
from relay.settings import Settings
from relay.store import events, keys
from relay.store.client import Redis

EVENT: dict[str, Any] = {
    "id": 919,
    "type": "feature-strategy-add",
    "createdBy": "user@company.com",
    "createdAt": "2022-06-01T10:03:08.290Z",
    "data": {"id": "3f4bf713", "name": "flexibleRollout", "parameters": {"rollout": "67"}},
    "preData": None,
    "tags": [],
    "featureName": "new-feature",
    "project": "my-other-project",
    "environment": "default",
}


@pytest.fixture
def role_headers(
    app_client: TestClient, admin_headers: dict[str, str]
) -> dict[str, dict[str, str]]:
    """A real token per role."""
    headers = {}
    for role in ("ingest", "reader", "writer"):
        created = app_client.post(
            "/api/v2/tokens", json={"name": role, "role": role}, headers=admin_headers
        ).json()
        headers[role] = {"Authorization": created["token"]}
    return headers


def _nothing_stored(client: Redis) -> bool:
    return not client.exists(keys.EVENTS_ALL, keys.OUTBOX, keys.EVENT_SEQ, keys.EVENTS_TIME)


def _post(client: TestClient, headers: dict[str, str], body: Any) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/api/events?source=unleash",
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )


def test_one_event_is_accepted_with_its_relay_id(
    app_client: TestClient, role_headers: dict[str, dict[str, str]], redis_client: Redis
) -> None:
    """An ingest token posts one event: 202 and `{"ids": [relay id]}`."""
    response = _post(app_client, role_headers["ingest"], EVENT)
    assert response.status_code == 202
    assert response.json() == {"ids": [1]}
    assert events.get_events(redis_client, ids=[1])[0] == {
        **EVENT,
        "id": 1,
        "producerId": 919,
        "source": "unleash",
    }


def test_a_batch_is_accepted_with_increasing_ids(
    app_client: TestClient, role_headers: dict[str, dict[str, str]]
) -> None:
    """An array gets one increasing relay id per event, in order; a writer may ingest too."""
    batch = [{**EVENT, "id": n} for n in range(1, 6)]
    response = _post(app_client, role_headers["writer"], batch)
    assert response.status_code == 202
    assert response.json() == {"ids": [1, 2, 3, 4, 5]}


def test_new_events_are_handed_to_the_workers(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    settings: Settings,
) -> None:
    """Recorded events wait in the outbox and a `relay.fanout` task names them."""
    # given: nothing left over from earlier tests in this process
    notifier = runtime_of(app_client.app).fanout
    assert notifier.flush()
    redis_client.delete("celery")
    # when
    ids = _post(app_client, admin_headers, [EVENT, {**EVENT, "id": 920}]).json()["ids"]
    # then
    assert events.outbox_older_than(redis_client, age_ms=0) == ids
    assert notifier.flush()
    assert _fanout_task_ids(redis_client) == ids


def _fanout_task_ids(client: Redis) -> list[int]:
    found = []
    for raw in client.lrange("celery", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == tasks.FANOUT:
            args, _, _ = json.loads(base64.b64decode(message["body"]))
            found.extend(args[0])
    return sorted(found)


def test_a_failed_fanout_publish_loses_nothing() -> None:
    """When publishing the task fails the sender logs it and goes on (the sweeper heals)."""
    # given
    published: list[list[int]] = []

    def flaky(_: Settings, ids: Any) -> None:
        if not published:
            published.append([])
            raise ConnectionError("broker down")
        published.append(list(ids))

    sender = fanout_notifier.FanoutSender(
        Settings(redis_url="redis://x"), publish=flaky, min_interval=0
    )
    # when
    sender.notify([1, 2])
    assert sender.flush()
    sender.notify([3])
    assert sender.flush()
    sender.close()
    # then
    assert published == [[], [3]]


def test_ids_that_arrive_while_publishing_are_merged() -> None:
    """Under load the sender publishes fewer, larger tasks, and never loses an id."""
    # given
    published: list[list[int]] = []
    sender = fanout_notifier.FanoutSender(
        Settings(redis_url="redis://x"),
        publish=lambda _, ids: published.append(list(ids)),
        min_interval=0.2,
    )
    # when
    for event_id in range(1, 101):
        sender.notify([event_id])
        time.sleep(0.001)
    sender.close()
    # then
    assert sorted(i for ids in published for i in ids) == list(range(1, 101))
    assert len(published) < 10


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        (b'{"type": "x", "createdBy": "a",', "body"),
        (b"42", "body"),
        (b"[]", "body"),
        ({**EVENT, "type": 3}, "type"),
        ({**EVENT, "createdBy": None}, "createdBy"),
        ({**EVENT, "createdAt": "2022-06-01 10:03"}, "createdAt"),
        ({k: v for k, v in EVENT.items() if k != "type"}, "type"),
        ({k: v for k, v in EVENT.items() if k != "createdBy"}, "createdBy"),
        ([EVENT, {**EVENT, "tags": "x"}], "[1].tags"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(
    app_client: TestClient,
    admin_headers: dict[str, str],
    redis_client: Redis,
    body: Any,
    attribute: str,
) -> None:
    """Malformed JSON, a non-object, an empty array, a wrong type, a missing field: 400."""
    response = _post(app_client, admin_headers, body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert attribute in [e["attribute"] for e in response.json()["errors"]]
    assert _nothing_stored(redis_client)


def test_one_bad_event_rejects_the_whole_batch(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """All or nothing: a bad timestamp at index 3 of 5 fails the request; nothing is kept."""
    batch = [{**EVENT, "id": n} for n in range(5)]
    batch[3]["createdAt"] = "2022-06-31T10:03:08Z"
    batch[4]["type"] = None
    response = _post(app_client, admin_headers, batch)
    assert response.status_code == 400
    assert [e["attribute"] for e in response.json()["errors"]] == ["[3].createdAt", "[4].type"]
    assert _nothing_stored(redis_client)


def test_more_than_1000_events_is_413(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A batch over the limit is refused as too large, with the limit in the message."""
    response = _post(app_client, admin_headers, [EVENT] * 1001)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert "at most 1000" in response.json()["message"]
    assert _nothing_stored(redis_client)


@pytest.fixture
def small_body_client(settings: Settings, redis_client: Redis) -> Iterator[TestClient]:
    """The API with a 2 KiB body limit."""
    limited = settings.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(limited, redis=redis_client)) as client:
        yield client


def test_an_oversize_body_is_413(
    small_body_client: TestClient, admin_headers: dict[str, str], redis_client: Redis
) -> None:
    """A body over RELAY_MAX_BODY_BYTES is refused before it is read whole."""
    response = _post(small_body_client, admin_headers, [EVENT] * 10)
    assert response.status_code == 413
    assert _nothing_stored(redis_client)


@pytest.mark.parametrize("source", ["", "a:b", "x" * 101, "has space"])
def test_an_invalid_source_is_400(
    app_client: TestClient, admin_headers: dict[str, str], redis_client: Redis, source: str
) -> None:
    """Source names are 1-100 letters, digits, `.`, `_`, `-` (they go into dedupe keys)."""
    response = app_client.post(
        "/api/events", params={"source": source}, json=EVENT, headers=admin_headers
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attribute"] == "source"
    assert _nothing_stored(redis_client)


def test_without_a_token_posting_is_401(app_client: TestClient, redis_client: Redis) -> None:
    """No Authorization header: 401 and nothing stored."""
    response = app_client.post("/api/events", json=EVENT)
    assert response.status_code == 401
    assert _nothing_stored(redis_client)


def test_a_reader_may_not_post_events(
    app_client: TestClient, role_headers: dict[str, dict[str, str]], redis_client: Redis
) -> None:
    """A reader token gets 403 on ingest."""
    response = _post(app_client, role_headers["reader"], EVENT)
    assert response.status_code == 403
    assert _nothing_stored(redis_client)


@pytest.mark.parametrize("path", ["/api/admin/events", "/api/admin/events/new-feature"])
def test_an_ingest_token_may_not_read_events(
    app_client: TestClient, role_headers: dict[str, dict[str, str]], path: str
) -> None:
    """An ingest token gets 403 on the read endpoints; no token gets 401."""
    assert app_client.get(path, headers=role_headers["ingest"]).status_code == 403
    assert app_client.get(path).status_code == 401
    assert app_client.get(path, headers=role_headers["reader"]).status_code == 200
