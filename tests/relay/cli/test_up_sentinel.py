"""`relay up` given sentinels: no embedded Redis; its API, worker and beat find the primary
through the sentinels and follow a failover with no process restarted."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.redis_topology import RedisTopology
from tests.relay.cli.up_process import healthy, ready, start, stop, up_environment, wait_for
from tests.support import SUBSCRIPTIONS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = "sentinel-up-admin"
HEADERS = {"Authorization": ADMIN}


def _event(number: int) -> dict[str, Any]:
    return {"type": "feature-updated", "createdBy": "t", "featureName": f"f{number}"}


def _ingest(url: str, number: int) -> int | None:
    """The relay id of a posted event once it is accepted, else None (refused: a retry)."""
    response = httpx.post(f"{url}/api/events", json=[_event(number)], headers=HEADERS)
    if response.status_code == 503:
        assert "retry-after" in response.headers
        return None
    assert response.status_code == 202, response.text
    ids: list[int] = response.json()["ids"]
    return ids[0]


def test_up_with_sentinels_follows_a_failover_without_restarting_anything(
    tmp_path: Path, receivers: Callable[[], Any]
) -> None:
    """The banner names the sentinels; after the primary is SIGKILLed, events are accepted
    and delivered again, `relay status` reads the new primary, and every child is the same
    process as before."""
    with RedisTopology(tmp_path / "redis", replicas=1) as topology:
        env = {
            "RELAY_REDIS_SENTINELS": topology.sentinels_setting,
            "RELAY_REDIS_SENTINEL_MASTER": topology.master_name,
            "RELAY_REDIS_PASSWORD": topology.password,
            "RELAY_ADMIN_TOKEN": ADMIN,
            "RELAY_ALLOW_PRIVATE_DESTINATIONS": "true",
            "RELAY_RETRY_SCHEDULE": "0.2,0.4,0.8,1.6",
        }
        up = start(tmp_path, env)
        try:
            wait_for(lambda: healthy(up) and ready(up), 90, "/readyz")
            wait_for(lambda: "Press Ctrl-C to stop." in up.stdout, 10, "the banner")
            banner = "\n".join(up.stdout)
            assert f"via sentinels {', '.join(topology.sentinel_addresses)}" in banner
            assert topology.password not in banner
            assert "redis" not in up.roles()  # no embedded Redis
            children = {role: up.child(role).pid for role in ("api", "worker", "beat")}
            receiver = receivers()
            receiver.always(200)
            body = {"name": "s", "config": {"url": receiver.url}, "on": True}
            created = httpx.post(up.url + SUBSCRIPTIONS, json=body, headers=HEADERS)
            assert created.status_code == 201, created.text
            before = _ingest(up.url, 1)
            assert before is not None
            receiver.wait_for(1, timeout=30)
            # when
            old = topology.kill_primary()
            new = topology.wait_for_failover(old, timeout=60)
            # then: ingest is accepted again (503s meanwhile), delivered by the same worker
            after = wait_for_accepted(up.url, 2)
            sub_id = created.json()["_id"]
            wait_for(lambda: f"msg_{after}_{sub_id}" in receiver.webhook_ids(), 60, "the delivery")
            wait_for(lambda: ready(up), 60, "/readyz after the failover")
            assert {role: up.child(role).pid for role in children} == children
            status = subprocess.run(
                [sys.executable, "-m", "relay.cli", "status", "--json"],
                env={**up_environment(), **env},
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            assert json.loads(status.stdout)
            assert new.role() == "master"
        finally:
            stop(up)


def wait_for_accepted(url: str, number: int) -> int:
    accepted: list[int] = []

    def post() -> bool:
        relay_id = _ingest(url, number)
        if relay_id is not None:
            accepted.append(relay_id)
        return bool(accepted)

    wait_for(post, 60, "an event accepted after the failover")
    return accepted[0]
