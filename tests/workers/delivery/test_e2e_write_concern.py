"""A worker whose write concern its replicas cannot meet: it delivers, once, and says so.

Delivery outcomes are recorded whatever the replicas do (the send happened); an outcome
the replicas did not confirm is logged, since a failover that lost it would re-send.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from relay.store import deliveries
from relay.store.client import connect
from tests.redis_topology import RedisTopology
from tests.support import e2e_settings, eventually, post_events, subscribe_via_api

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN = {"Authorization": "concern-admin"}


def test_unconfirmed_outcomes_are_delivered_once_and_logged(
    tmp_path: Path,
    receivers: Callable[[], Any],
    start_worker: Callable[..., Any],
    api_for: Callable[..., Any],
) -> None:
    with RedisTopology(tmp_path / "redis", replicas=1) as topology:
        primary = topology.primary()
        settings = e2e_settings(
            redis_url=primary.url,
            data_dir=tmp_path / "data",
            admin_token=ADMIN["Authorization"],
            redis_min_replicas=1,
            redis_replica_timeout=0.3,
        )
        worker = start_worker(settings)
        # api_for gives the API a plain client, without the write concern: ingest is accepted
        api = api_for(settings)
        receiver = receivers()
        receiver.always(200)
        sub_id = subscribe_via_api(api, receiver.url, name="concern", headers=ADMIN)
        [replica] = topology.replicas_of_primary()
        topology.stop(replica)
        # when
        [event_id] = post_events(
            api, [{"type": "feature-updated", "createdBy": "t"}], headers=ADMIN
        )
        # then: delivered, recorded as delivered, and not sent again
        receiver.wait_for(1, timeout=30)
        delivery_id = f"msg_{event_id}_{sub_id}"
        store = connect(primary.url)
        eventually(
            lambda: (
                getattr(deliveries.get_delivery(store, delivery_id=delivery_id), "state", None)
                == deliveries.DeliveryState.DELIVERED
            ),
            timeout=30,
            what="the delivery recorded as delivered",
        )
        eventually(
            lambda: "a failover now could re-send them" in worker.output(),
            timeout=30,
            what="the worker's warning",
        )
        assert receiver.webhook_ids() == [delivery_id]
        store.close()
