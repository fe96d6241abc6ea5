"""Attacks on `relay listen`'s loopback allowance through the API, with a writer token and
the destination guard on (the relay's default).

The mark (`SubscriptionRecord.local_listener`) lets one subscription deliver to one
loopback origin. Only the CLI may set it (`take_subscription`, here against the test
Redis); a writer must not be able to set it, move it, or keep it while aiming the
subscription elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.cli.listen import take_subscription
from relay.destinations import listener_origin
from relay.settings import Settings
from relay.store import subscriptions, tokens
from relay.store.client import Redis
from relay.store.tokens import Role
from tests.support import SUBSCRIPTIONS, stored_subscription, subscribe_via_api

PORT = 9876
ORIGIN = listener_origin("127.0.0.1", PORT)
OTHER = "http://127.0.0.1:6379"  # another local service, e.g. a Redis
PUBLIC_URL = "https://1.1.1.1/hook"  # a global literal: the guard lets it by, no DNS needed


@pytest.fixture
def guarded(settings: Settings) -> Settings:
    """The test settings with the destination guard on, as a relay is by default."""
    return settings.model_copy(update={"allow_private_destinations": False})


@pytest.fixture
def api(guarded: Settings, api_for: Callable[[Settings], TestClient]) -> TestClient:
    return api_for(guarded)


@pytest.fixture
def writer(redis_client: Redis) -> dict[str, str]:
    _, secret = tokens.create_token(redis_client, name="writer", role=Role.WRITER)
    return {"Authorization": secret}


@pytest.fixture
def reader(redis_client: Redis) -> dict[str, str]:
    _, secret = tokens.create_token(redis_client, name="reader", role=Role.READER)
    return {"Authorization": secret}


@pytest.fixture
def listening(redis_client: Redis, guarded: Settings) -> str:
    """The id of a subscription `relay listen --port 9876` made (the CLI's own function)."""
    return take_subscription(redis_client, guarded, origin=ORIGIN, policies=[]).record.id


def _patch(api: TestClient, sub_id: str, ops: list[dict[str, Any]], headers: dict[str, str]) -> Any:
    return api.patch(f"{SUBSCRIPTIONS}/{sub_id}", json=ops, headers=headers)


# --- create -----------------------------------------------------------------------------------

# (where the mark is smuggled in, the attribute the 400 names)
SMUGGLED = [
    pytest.param({"localListener": ORIGIN}, "localListener", id="top-level"),
    pytest.param({"_status": {"localListener": ORIGIN}}, "_status", id="in-_status"),
    pytest.param({"config": {"localListener": ORIGIN}}, "config.localListener", id="in-config"),
]


def _smuggling(url: str, smuggled: dict[str, Any]) -> dict[str, Any]:
    config = {"url": url, **smuggled.get("config", {})}
    return {"name": "sneaky", **smuggled, "config": config}


@pytest.mark.parametrize("url", [f"{ORIGIN}/", PUBLIC_URL], ids=["listener-url", "public-url"])
@pytest.mark.parametrize(("smuggled", "attribute"), SMUGGLED)
def test_create_with_a_smuggled_mark_is_400(
    api: TestClient,
    writer: dict[str, str],
    redis_client: Redis,
    url: str,
    smuggled: dict[str, Any],
    attribute: str,
) -> None:
    """A create with `localListener` anywhere in its body is refused, naming that field,
    whether its URL is the listener's or a public one; nothing is stored."""
    response = api.post(SUBSCRIPTIONS, json=_smuggling(url, smuggled), headers=writer)
    assert response.status_code == 400, response.text
    assert attribute in [problem["attribute"] for problem in response.json()["errors"]]
    assert subscriptions.list_subscriptions(redis_client) == []


def test_create_at_the_listener_url_is_refused_as_loopback(
    api: TestClient, writer: dict[str, str], listening: str, redis_client: Redis
) -> None:
    """While a listener runs, a writer's subscription to its very URL is still loopback: 400."""
    response = api.post(
        SUBSCRIPTIONS, json={"name": "copy", "config": {"url": f"{ORIGIN}/"}}, headers=writer
    )
    assert response.status_code == 400, response.text
    [problem] = response.json()["errors"]
    assert problem["attribute"] == "config.url" and "loopback" in problem["reason"]
    assert [r.id for r in subscriptions.list_subscriptions(redis_client)] == [listening]


# --- JSON Patch -------------------------------------------------------------------------------


# (a JSON Patch path to the mark, the attribute the 400 names)
MARK_PATHS = [
    ("/localListener", "localListener"),
    ("/_status/localListener", "[0].path"),  # _status is read-only
    ("/config/localListener", "config.localListener"),
]


@pytest.mark.parametrize(("path", "attribute"), MARK_PATHS)
def test_patch_cannot_add_a_mark(
    api: TestClient, writer: dict[str, str], redis_client: Redis, path: str, attribute: str
) -> None:
    """`add` of localListener (top level, in _status, in config) sets no mark, and the URL
    still cannot move to 127.0.0.1 in the same patch."""
    # given
    sub_id = subscribe_via_api(api, PUBLIC_URL, name="plain", headers=writer)
    # when: the mark alone, then the mark with the URL moved to the origin it names
    alone = _patch(api, sub_id, [{"op": "add", "path": path, "value": ORIGIN}], writer)
    moved = _patch(
        api,
        sub_id,
        [
            {"op": "add", "path": path, "value": ORIGIN},
            {"op": "replace", "path": "/config/url", "value": f"{ORIGIN}/"},
        ],
        writer,
    )
    # then
    assert alone.status_code == 400, alone.text
    assert attribute in [problem["attribute"] for problem in alone.json()["errors"]]
    assert moved.status_code == 400, moved.text
    record = stored_subscription(redis_client, sub_id)
    assert record.local_listener is None and record.config["url"] == PUBLIC_URL
    assert (
        "localListener"
        not in api.get(f"{SUBSCRIPTIONS}/{sub_id}", headers=writer).json()["_status"]
    )


@pytest.mark.parametrize(("path", "attribute"), MARK_PATHS)
def test_patch_cannot_move_a_listeners_mark(
    api: TestClient,
    writer: dict[str, str],
    redis_client: Redis,
    listening: str,
    path: str,
    attribute: str,
) -> None:
    """On a listener's subscription, rewriting the mark to another local port and aiming
    the URL there is refused; the mark stays the listener's own."""
    response = _patch(
        api,
        listening,
        [
            {"op": "add", "path": path, "value": OTHER},
            {"op": "replace", "path": "/config/url", "value": f"{OTHER}/"},
        ],
        writer,
    )
    assert response.status_code == 400, response.text
    assert attribute in [problem["attribute"] for problem in response.json()["errors"]]
    record = stored_subscription(redis_client, listening)
    assert (record.local_listener, record.config["url"]) == (ORIGIN, f"{ORIGIN}/")


@pytest.mark.parametrize(
    "url",
    [
        f"{OTHER}/",  # another loopback port
        f"{ORIGIN}/other",  # the same origin, another path
        f"{ORIGIN}/?x=1",
        f"http://localhost:{PORT}/",  # a name for the same socket
        f"http://[::1]:{PORT}/",
        f"http://127.0.0.2:{PORT}/",
        f"http://0.0.0.0:{PORT}/",
        f"http://2130706433:{PORT}/",  # 127.0.0.1 as one decimal number
        f"http://user:pw@127.0.0.1:{PORT}/",
        f"https://127.0.0.1:{PORT}/",
    ],
)
def test_patch_of_a_listeners_url_to_another_local_target_is_400(
    api: TestClient, writer: dict[str, str], redis_client: Redis, listening: str, url: str
) -> None:
    """The allowance is for the listener's URL alone: any other local target is refused."""
    response = _patch(
        api, listening, [{"op": "replace", "path": "/config/url", "value": url}], writer
    )
    assert response.status_code == 400, response.text
    [problem] = response.json()["errors"]
    assert problem["attribute"] == "config.url"
    record = stored_subscription(redis_client, listening)
    assert (record.local_listener, record.config["url"]) == (ORIGIN, f"{ORIGIN}/")


def test_patch_to_a_public_url_drops_the_mark_for_good(
    api: TestClient, writer: dict[str, str], redis_client: Redis, listening: str
) -> None:
    """A listener's subscription moved to a public URL loses its mark, so it can never be
    moved back to the loopback origin."""
    # when
    moved = _patch(
        api, listening, [{"op": "replace", "path": "/config/url", "value": PUBLIC_URL}], writer
    )
    back = _patch(
        api, listening, [{"op": "replace", "path": "/config/url", "value": f"{ORIGIN}/"}], writer
    )
    # then
    assert moved.status_code == 200, moved.text
    assert "localListener" not in moved.json()["_status"]
    assert back.status_code == 400, back.text
    record = stored_subscription(redis_client, listening)
    assert record.local_listener is None and record.config["url"] == PUBLIC_URL


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "replace", "path": "/name", "value": "renamed"}],
        [{"op": "replace", "path": "/on", "value": False}],
        [{"op": "add", "path": "/tags/-", "value": "mine"}],
        [
            {
                "op": "replace",
                "path": "/statements",
                "value": [{"effect": "allow", "resources": ["proj/*"], "actions": ["*"]}],
            }
        ],
        [{"op": "replace", "path": "/config/secret", "value": "a-rotated-secret-value"}],
        [{"op": "add", "path": "/config/headers", "value": {"X-Team": "web"}}],
        [{"op": "replace", "path": "/config/url", "value": f"{ORIGIN}/"}],  # the same URL
    ],
    ids=["name", "on", "tags", "statements", "secret", "headers", "same-url"],
)
def test_patch_of_other_fields_keeps_the_mark(
    api: TestClient,
    writer: dict[str, str],
    redis_client: Redis,
    listening: str,
    ops: list[dict[str, Any]],
) -> None:
    """Editing a listener's subscription without moving its URL keeps it deliverable."""
    response = _patch(api, listening, ops, writer)
    assert response.status_code == 200, response.text
    assert response.json()["_status"]["localListener"] == ORIGIN
    assert stored_subscription(redis_client, listening).local_listener == ORIGIN


def test_writers_and_readers_see_the_mark(
    api: TestClient,
    writer: dict[str, str],
    reader: dict[str, str],
    listening: str,
) -> None:
    """`_status.localListener` names the origin in a GET and in the list, for every role."""
    plain = subscribe_via_api(api, PUBLIC_URL, name="plain", headers=writer)
    for headers in (writer, reader):
        one = api.get(f"{SUBSCRIPTIONS}/{listening}", headers=headers)
        assert one.status_code == 200, one.text
        assert one.json()["_status"]["localListener"] == ORIGIN
        listed = api.get(SUBSCRIPTIONS, headers=headers).json()["items"]
        marks = {item["_id"]: item["_status"].get("localListener") for item in listed}
        assert marks == {listening: ORIGIN, plain: None}


def test_a_reader_cannot_patch_a_listeners_subscription(
    api: TestClient, reader: dict[str, str], redis_client: Redis, listening: str
) -> None:
    """Seeing the mark is not being able to move it."""
    response = _patch(
        api, listening, [{"op": "replace", "path": "/config/url", "value": PUBLIC_URL}], reader
    )
    assert response.status_code == 403, response.text
    assert stored_subscription(redis_client, listening).local_listener == ORIGIN
