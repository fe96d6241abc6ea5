"""Helpers shared by tests in several folders (fixtures live in conftest.py).

Factories make records in the store (`subscription`, `subscribe`, `record_event`) or through
the API (`subscribe_via_api`, `post_events`); `eventually` polls until a condition holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.api.server import server_config
from relay.cli.embedded_redis import free_port
from relay.settings import Settings
from relay.store import events, subscriptions
from relay.store.client import Redis, connect
from relay.store.subscriptions import SubscriptionRecord

# nothing listens on the discard port: a delivery to it fails at once
CLOSED_URL = "http://127.0.0.1:9/hook"
SUBSCRIPTIONS = "/api/v2/integrations/webhook"


class Api(Protocol):
    """What the API factories need of a client: a TestClient or an httpx client."""

    def post(self, url: str, *, json: Any = None, headers: Any = None) -> Any: ...


def subscription(
    client: Redis,
    *,
    url: str = CLOSED_URL,
    name: str = "test",
    on: bool = True,
    statements: list[dict[str, Any]] | None = None,
    fmt: str = "unleash",
    secret: str | None = None,
    headers: dict[str, str] | None = None,
    delivery: dict[str, Any] | None = None,
) -> SubscriptionRecord:
    """Store a webhook subscription (by default unleash format, to a closed port)."""
    config: dict[str, Any] = {"url": url, "format": fmt, "headers": headers or {}}
    if secret is not None:
        config["secret"] = secret
    return subscriptions.create_subscription(
        client,
        integration_key="webhook",
        name=name,
        config=config,
        statements=statements or [],
        on=on,
        tags=[],
        delivery=delivery,
    )


def subscribe(client: Redis, **fields: Any) -> str:
    """`subscription(...)`'s id."""
    return subscription(client, **fields).id


def unleash_event(**fields: Any) -> dict[str, Any]:
    """An Unleash `feature-created` event; `fields` add to it or replace its own."""
    return {
        "type": "feature-created",
        "createdBy": "test",
        "featureName": "f",
        "project": "p",
        **fields,
    }


def record_event(client: Redis, *, source: str = "test", **fields: Any) -> int:
    """Record `unleash_event(**fields)` in the store; its relay id."""
    [event_id] = events.record_events(client, events=[unleash_event(**fields)], source=source)
    return event_id


def stored_subscription(client: Redis, sub_id: str) -> SubscriptionRecord:
    """The subscription as Redis holds it (it must exist)."""
    record = subscriptions.get_subscription(client, sub_id=sub_id)
    assert record is not None, f"no subscription {sub_id}"
    return record


def subscribe_via_api(
    api: Api,
    url: str,
    *,
    name: str,
    headers: dict[str, str] | None = None,
    statements: list[dict[str, Any]] | None = None,
    on: bool = True,
    fmt: str = "unleash",
    secret: str | None = None,
) -> str:
    """Create a webhook subscription through the API; its id."""
    config: dict[str, Any] = {"url": url, "format": fmt}
    if secret is not None:
        config["secret"] = secret
    body: dict[str, Any] = {"name": name, "config": config, "on": on}
    if statements is not None:
        body["statements"] = statements
    response = api.post(SUBSCRIPTIONS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    sub_id: str = response.json()["_id"]
    return sub_id


def post_events(api: Api, batch: Sequence[dict[str, Any]], *, headers: dict[str, str]) -> list[int]:
    """Record events through `POST /api/events`; their relay ids."""
    response = api.post("/api/events", json=list(batch), headers=headers)
    assert response.status_code == 202, response.text
    ids: list[int] = response.json()["ids"]
    return ids


def deliveries_of(
    api: TestClient,
    sub_id: str,
    *,
    headers: dict[str, str],
    integration: str = "webhook",
    **params: Any,
) -> list[dict[str, Any]]:
    """A subscription's deliveries through the API (`params`: limit, state, ...)."""
    path = f"/api/v2/integrations/{integration}/{sub_id}/deliveries"
    response = api.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def eventually(
    check: Callable[[], Any],
    timeout: float = 15.0,
    *,
    interval: float = 0.05,
    ignoring: tuple[type[Exception], ...] = (),
    what: str = "the condition",
) -> Any:
    """Poll `check` every `interval` s until it returns something true; that value.

    Exceptions of the `ignoring` types count as "not yet"; after `timeout` s an
    AssertionError says `what` was waited for.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except ignoring:
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def serve_in_thread(app: FastAPI, settings: Settings) -> Iterator[str]:
    """`app` served by uvicorn on 127.0.0.1 in a thread, configured as `relay serve` does
    (protocol, limits); yields its base URL, stops it on exit."""
    port = free_port()
    config = server_config(app, settings, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def e2e_settings(*, redis_url: str, data_dir: Path, admin_token: str, **overrides: Any) -> Settings:
    """Settings of an end-to-end module: quick retries and leases, no jitter, receivers on
    127.0.0.1 allowed."""
    fields: dict[str, Any] = {
        "retry_schedule": [0.2, 0.4, 0.8],
        "retry_jitter": 0.0,
        "delivery_lease": 3.0,
        "delivery_timeout": 5.0,
        "allow_private_destinations": True,
        **overrides,
    }
    return Settings(redis_url=redis_url, admin_token=admin_token, data_dir=data_dir, **fields)


@contextmanager
def api_with_worker(settings: Settings, start_worker: Callable[..., Any]) -> Iterator[TestClient]:
    """A real worker (with beat) and the API in-process, on `settings`; both stopped after."""
    worker = start_worker(settings, beat=True)
    try:
        with TestClient(create_app(settings, redis=connect(settings.require_redis_url()))) as api:
            yield api
    finally:
        worker.stop()


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(marker: str) -> str:
    """The code block that follows `<!-- marker...-->` in the README, without its fences."""
    text = README.read_text()
    start = text.index(f"<!-- {marker}")
    fence = text.index("```", start)
    body_start = text.index("\n", fence) + 1
    return text[body_start : text.index("\n```", body_start)]
