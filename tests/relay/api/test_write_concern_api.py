"""The API with a write concern (RELAY_REDIS_MIN_REPLICAS=1) on a real primary and replica:
ingest and subscription changes are answered done only once the replica holds them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from relay.api.app import create_app
from relay.observability.metrics import REGISTRY
from relay.settings import Settings
from relay.store import events, subscriptions
from tests.conftest import ADMIN_TOKEN
from tests.redis_topology import DataNode, RedisTopology
from tests.support import CLOSED_URL, SUBSCRIPTIONS, unleash_event

pytestmark = pytest.mark.slow

INGEST = "/api/events?source=unleash"
ADMIN = {"Authorization": ADMIN_TOKEN}


@pytest.fixture
def api(topology: RedisTopology, replica: DataNode, tmp_path: Path) -> Iterator[TestClient]:
    """The API on the primary's URL, opening its own client as `relay serve` does, with a
    write concern of one replica within 0.5 s."""
    settings = Settings(
        redis_url=topology.primary().url,
        redis_min_replicas=1,
        redis_replica_timeout=0.5,
        admin_token=ADMIN_TOKEN,
        data_dir=tmp_path / "data",
        allow_private_destinations=True,
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def ingest_headers(api: TestClient) -> dict[str, str]:
    created = api.post("/api/v2/tokens", json={"name": "unleash", "role": "ingest"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    return {"Authorization": created.json()["token"]}


def _client(node: DataNode) -> redis.Redis:
    return node.client(decode_responses=True)


def _unreplicated(write: str) -> float:
    return REGISTRY.get_sample_value("relay_unreplicated_writes_total", {"write": write}) or 0.0


def _recorded(node: DataNode) -> dict[int, int]:
    """Relay id -> producer id of every event `node` holds."""
    with _client(node) as client:
        documents = events.event_page(client).documents
    return {event["id"]: event["producerId"] for event in map(json.loads, documents)}


def _assert_retry_soon(response: Any) -> None:
    """A 503 in the seeds' error shape that tells the client when to try again."""
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert "replicas" in body["message"]


def test_ingest_is_answered_202_with_the_events_on_the_replica(
    api: TestClient, ingest_headers: dict[str, str], replica: DataNode
) -> None:
    """With the replica up, POST /api/events answers 202, and the replica already holds
    the events the answer names."""
    batch = [unleash_event(id=101), unleash_event(id=102)]

    response = api.post(INGEST, json=batch, headers=ingest_headers)

    assert response.status_code == 202, response.text
    ids = response.json()["ids"]
    assert _recorded(replica) == dict(zip(ids, [101, 102], strict=True))


def test_without_the_replica_writes_are_503_and_a_retry_after_it_returns_keeps_the_ids(
    topology: RedisTopology, api: TestClient, ingest_headers: dict[str, str], replica: DataNode
) -> None:
    """With the replica down, ingest and a subscription's creation are 503 with Retry-After
    (the primary holds them, counted as unreplicated); once the replica is back, the same
    events posted again are 202 with the relay ids the primary gave them (deduped)."""
    # given
    primary = topology.primary()
    batch = [unleash_event(id=201), unleash_event(id=202)]
    ingest_before, changes_before = _unreplicated("ingest"), _unreplicated("subscription-change")
    topology.stop(replica)
    # when
    refused = api.post(INGEST, json=batch, headers=ingest_headers)
    body = {"name": "audit", "config": {"url": CLOSED_URL, "format": "unleash"}, "statements": []}
    refused_subscription = api.post(SUBSCRIPTIONS, json=body, headers=ADMIN)
    # then
    _assert_retry_soon(refused)
    _assert_retry_soon(refused_subscription)
    assert _unreplicated("ingest") == ingest_before + 1
    assert _unreplicated("subscription-change") == changes_before + 1
    held = _recorded(primary)
    assert sorted(held.values()) == [201, 202]
    with _client(primary) as client:
        assert [record.name for record in subscriptions.list_subscriptions(client)] == ["audit"]
    # when: the replica is back and the producer sends the same events again
    topology.start(replica)
    topology.wait_until_linked(replica)
    accepted = api.post(INGEST, json=batch, headers=ingest_headers)
    # then
    assert accepted.status_code == 202, accepted.text
    ids = accepted.json()["ids"]
    assert dict(zip(ids, [201, 202], strict=True)) == held
    assert _recorded(primary) == held  # not recorded twice
    assert _recorded(replica) == held
    assert _unreplicated("ingest") == ingest_before + 1


def test_without_the_replica_a_missing_subscription_is_still_404(
    api: TestClient, topology: RedisTopology, replica: DataNode
) -> None:
    """Nothing written, nothing to confirm: PATCH and DELETE of an unknown id answer 404."""
    topology.stop(replica)
    missing = f"{SUBSCRIPTIONS}/{'0' * 24}"
    patch = [{"op": "replace", "path": "/on", "value": False}]
    assert api.patch(missing, json=patch, headers=ADMIN).status_code == 404
    assert api.delete(missing, headers=ADMIN).status_code == 404
