"""`relay status`: queue depths, workers seen and each subscription's health, from Redis."""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from relay.cli import status
from relay.cli.main import main
from relay.settings import Settings
from relay.store import deliveries, heartbeats, subscription_status, subscriptions
from relay.store.client import Redis, open_redis
from relay.store.deliveries import DeliveryKind, DeliveryState, Finish, NewDelivery
from relay.store.subscriptions import SubscriptionRecord
from tests.redis_topology import RedisTopology
from tests.support import record_event, subscription


def kill(client: Redis, sub_id: str, count: int) -> None:
    """`count` dead deliveries for the subscription."""
    now = int(time.time() * 1000)
    made = [NewDelivery(f"msg_{n}_{sub_id}", DeliveryKind.EVENT, sub_id, n) for n in range(count)]
    deliveries.create_deliveries(client, deliveries=made, now_ms=now, due_at_ms=now)
    dead = [Finish(d.id, DeliveryState.DEAD, reason="gave up") for d in made]
    deliveries.finish(client, results=dead, now_ms=now, ttl_s=3600)


@pytest.fixture
def relay_state(redis_client: Redis) -> dict[str, SubscriptionRecord]:
    """Two subscriptions: `healthy` (3 successes) and `broken` (2 errors, 2 dead, turned off)."""
    healthy, broken = (
        subscription(redis_client, url=f"http://127.0.0.1:9/{name}", name=name)
        for name in ("healthy", "broken")
    )
    now = int(time.time() * 1000)
    for n in range(3):
        subscription_status.record_success(redis_client, sub_id=healthy.id, at_ms=now - n)
    for code in (502, 500):
        subscription_status.record_failure(
            redis_client, sub_id=broken.id, at_ms=now, status_code=code, response_body="down\n!"
        )
    kill(redis_client, broken.id, 2)
    subscriptions.turn_off(redis_client, sub_id=broken.id, reason="failing for 5.0d")
    record_event(redis_client, source="status", createdBy="s")
    heartbeats.beat(redis_client, worker="w1@host")
    return {"healthy": healthy, "broken": broken}


def test_status_gathers_queues_workers_and_subscription_health(
    redis_client: Redis, relay_state: dict[str, SubscriptionRecord]
) -> None:
    """Depths come from the Redis sets; each subscription has its counts, last error and dead."""
    found = status.gather(redis_client, worker_ttl=30)
    by_name = {sub.name: sub for sub in found.subscriptions}
    assert (found.queues.outbox, found.queues.dead, found.queues.due) == (1, 2, 0)
    assert [(w.name, w.alive) for w in found.workers] == [("w1@host", True)]
    healthy, broken = by_name["healthy"], by_name["broken"]
    assert (healthy.on, healthy.success_count, healthy.error_count, healthy.dead) == (True, 3, 0, 0)
    assert (broken.on, broken.error_count, broken.dead) == (False, 2, 2)
    assert broken.disabled_reason == "failing for 5.0d"
    assert broken.last_error_text == "500: down !"  # the newest error, whitespace folded
    assert found.dead_unattributed == 0


def test_a_worker_without_a_recent_heartbeat_is_shown_silent(redis_client: Redis) -> None:
    """A worker last seen before the heartbeat TTL is listed, but not alive."""
    heartbeats.beat(redis_client, worker="old@host")
    time.sleep(0.05)
    found = status.gather(redis_client, worker_ttl=0.01)
    assert [(w.name, w.alive) for w in found.workers] == [("old@host", False)]


def test_status_json_is_for_machines(
    settings: Settings,
    relay_state: dict[str, SubscriptionRecord],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`relay status --json` prints one JSON document: queues, workers, subscriptions."""
    # when
    code = main(["status", "--json"], settings=settings)
    document = json.loads(capsys.readouterr().out)
    # then
    assert code == 0
    assert document["queues"] == {
        "outbox": 1,
        "due": 0,
        "ready": 0,
        "claims": 0,
        "dead": 2,
        "waiting": 0,
    }
    assert [w["name"] for w in document["workers"]] == ["w1@host"]
    broken = next(s for s in document["subscriptions"] if s["name"] == "broken")
    assert broken["id"] == relay_state["broken"].id
    assert (broken["on"], broken["dead"], broken["errorCount"]) == (False, 2, 2)
    assert broken["disabledReason"] == "failing for 5.0d"


def test_status_table_shows_health_at_a_glance(
    settings: Settings,
    relay_state: dict[str, SubscriptionRecord],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`relay status` prints queues, workers, and a row per subscription with why it is off."""
    code = main(["status"], settings=settings)
    out = capsys.readouterr().out
    assert code == 0
    for text in ("outbox", "dead", "w1@host", "alive", "healthy", "broken", "off:", "failing"):
        assert text in out
    assert relay_state["healthy"].id in out


def test_dead_letters_of_a_deleted_subscription_are_still_counted(
    redis_client: Redis, relay_state: dict[str, SubscriptionRecord]
) -> None:
    """Dead deliveries whose subscription is gone are shown apart, not dropped."""
    subscriptions.delete_subscription(redis_client, sub_id=relay_state["broken"].id)
    found = status.gather(redis_client, worker_ttl=30)
    assert [sub.name for sub in found.subscriptions] == ["healthy"]
    assert found.dead_unattributed == 2


def test_status_without_redis_or_a_running_relay_explains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No RELAY_REDIS_URL and no `relay up` on the data dir: exit 2 with what to do."""
    code = main(["status", "--data-dir", str(tmp_path)], settings=Settings(redis_url=None))
    assert code == 2
    assert "RELAY_REDIS_URL" in capsys.readouterr().err


def test_an_open_circuit_and_waiting_deliveries_are_shown(redis_client: Redis) -> None:
    """A subscription whose circuit opened: its state says so, with the deliveries held back."""
    # given: three attempts in a row got no answer; two more deliveries came meanwhile
    record = subscription(redis_client, url="http://127.0.0.1:9/hanging", name="hanging")
    limits = deliveries.Limits(
        max_in_flight=3,
        lease_ms=60_000,
        circuit_failures=3,
        circuit_cooldown_ms=30_000,
        circuit_cooldown_max_ms=60_000,
    )
    now = int(time.time() * 1000)
    made = [NewDelivery(f"msg_{n}_{record.id}", DeliveryKind.EVENT, record.id, n) for n in range(5)]
    ids = deliveries.create_deliveries(redis_client, deliveries=made, now_ms=now, due_at_ms=now)
    deliveries.claim(redis_client, ids=ids, now_ms=now, lease_ms=60_000, limits=limits)
    failed = [
        Finish(i, DeliveryState.FAILED, next_attempt_at=now + 5_000, sub_id=record.id, reach=reach)
        for i, reach in zip(ids[:3], [deliveries.Reach.UNREACHABLE] * 3, strict=True)
    ]
    deliveries.settle(redis_client, results=failed, now_ms=now, ttl_s=60, limits=limits)
    # when
    found = status.gather(redis_client, worker_ttl=30)
    out = io.StringIO()
    status.render(found, Console(file=out, width=200))
    # then
    [hanging] = found.subscriptions
    assert (hanging.circuit, hanging.waiting) == ("open", 2)
    assert hanging.circuit_retry_at == now + 30_000 and found.queues.waiting == 2
    assert "on, circuit open: next probe in 30s, 2 waiting" in out.getvalue()


LIMITS = deliveries.Limits(
    max_in_flight=10,
    lease_ms=60_000,
    circuit_failures=3,
    circuit_cooldown_ms=30_000,
    circuit_cooldown_max_ms=60_000,
)


def ordered(client: Redis, sub_id: str, *keys: str) -> list[str]:
    """A delivery per ordering key given (in event order), claimed now; all their ids."""
    now = int(time.time() * 1000)
    made = [
        NewDelivery(f"msg_{n}_{sub_id}", DeliveryKind.EVENT, sub_id, n, order_key=key)
        for n, key in enumerate(keys)
    ]
    ids = deliveries.create_deliveries(client, deliveries=made, now_ms=now, due_at_ms=now)
    deliveries.claim(client, ids=ids, now_ms=now, lease_ms=60_000, limits=LIMITS)
    return ids


def test_a_pause_limits_throttling_and_held_keys_are_shown(redis_client: Redis) -> None:
    """A paused, rate-limited, ordered subscription: its state says why it is paused and for
    how long, its flow its slots in flight against its cap, its rate and the keys held."""
    # given: flag a's head goes (taking the one token), flag b's head finds none left; a's
    # other two and b's other one wait behind their heads; then a 429 pauses it
    limited = {"ordering": "flag", "maxInFlight": 3, "maxPerSecond": 1}
    record = subscription(redis_client, name="paced", delivery=limited)
    ordered(redis_client, record.id, "flag:p/a", "flag:p/a", "flag:p/a", "flag:p/b", "flag:p/b")
    until = int(time.time() * 1000) + 300_000
    reason = "receiver answered 429 with Retry-After 300 s"
    subscription_status.pause(
        redis_client, sub_id=record.id, until_ms=until, reason=reason, at_ms=0
    )
    # when
    found = status.gather(redis_client, worker_ttl=30)
    out = io.StringIO()
    status.render(found, Console(file=out, width=300))
    soon = io.StringIO()
    status.render(replace(found, at=until - 2_100), Console(file=soon, width=300))
    # then
    [paced] = found.subscriptions
    assert (paced.paused_until, paused_reason := paced.paused_reason) == (until, reason)
    assert (paced.in_flight, paced.max_in_flight, paced.max_per_second) == (1, 3, 1.0)
    assert paced.throttled and (paced.held_keys, paced.held_deliveries) == (2, 3)
    assert f"on, paused 5m more: {paused_reason}" in out.getvalue()
    assert "1/3 in flight, max 1/s: throttled, 2 keys held, 3 behind" in out.getvalue()
    assert "paused 2.1s more: receiver answered 429" in soon.getvalue()


def test_a_subscription_without_limits_shows_only_its_slots_in_flight(
    redis_client: Redis,
) -> None:
    """No pause, no own cap, no rate, unordered: the flow is the count in flight alone."""
    # given
    record = subscription(redis_client, name="plain")
    ordered(redis_client, record.id, "", "")
    # when
    found = status.gather(redis_client, worker_ttl=30)
    out = io.StringIO()
    status.render(found, Console(file=out, width=300))
    # then
    [plain] = found.subscriptions
    assert (plain.paused_until, plain.max_in_flight, plain.max_per_second) == (None, None, None)
    assert (plain.in_flight, plain.throttled, plain.held_keys) == (2, False, 0)
    assert re.search(r"│ 2 in flight +│", out.getvalue())  # the line says nothing more
    assert "more:" not in out.getvalue()  # no pause


def test_status_json_carries_the_flow_fields(redis_client: Redis) -> None:
    """`--json` has the pause, limits, in-flight count, throttling and held counts."""
    # given
    record = subscription(redis_client, name="json", delivery={"ordering": "subscription"})
    ordered(redis_client, record.id, "subscription", "subscription")
    # when
    [document] = status.as_json(status.gather(redis_client, worker_ttl=30))["subscriptions"]
    # then
    assert document["pausedUntil"] is None and document["maxPerSecond"] is None
    assert (document["inFlight"], document["throttled"]) == (1, False)
    assert (document["heldKeys"], document["heldDeliveries"]) == (1, 1)


@pytest.mark.slow
def test_status_shows_the_replicas_and_a_write_concern_they_miss(tmp_path: Path) -> None:
    """The primary's replicas with their lag; with RELAY_REDIS_MIN_REPLICAS above the
    replicas connected, the panel says writes answer 503."""
    with RedisTopology(tmp_path / "redis", replicas=1) as topology:
        primary = topology.primary()
        settings = Settings(redis_url=primary.url, redis_min_replicas=1)
        client = open_redis(settings)
        found = status.gather(client, worker_ttl=30)
        assert found.redis.role == "master" and len(found.redis.replicas) == 1
        assert status.as_json(found)["redis"]["minReplicas"] == 1
        assert _rendered(found).count("missing") == 0
        [replica] = topology.replicas_of_primary()
        topology.stop(replica)
        found = status.gather(client, worker_ttl=30)
        assert found.redis.replicas == [] and found.redis.short == 1
        assert "1 missing, writes answer 503" in _rendered(found)
        client.close()


def _rendered(found: status.Status) -> str:
    out = io.StringIO()
    status.render(found, Console(file=out, width=200))
    return out.getvalue()


def test_a_writers_name_and_a_receivers_text_cannot_drive_the_operators_terminal(
    redis_client: Redis,
) -> None:
    """A subscription name (a writer's) and a receiver's answer carrying ANSI escapes, rich
    markup and line breaks show as text in `relay status`: nothing clears the screen, no
    markup is obeyed, and the table keeps one row per subscription."""
    # given
    hostile = "x\x1b[2J\x1b]8;;http://evil/\x07[bold red]owned[/]\nforged row"
    record = subscription(redis_client, url="http://127.0.0.1:9/h", name=hostile)
    now = int(time.time() * 1000)
    subscription_status.record_failure(
        redis_client, sub_id=record.id, at_ms=now, status_code=500, response_body=hostile
    )
    # when: rendered for a real terminal (colours and all)
    out = io.StringIO()
    status.render(
        status.gather(redis_client, worker_ttl=30),
        Console(file=out, force_terminal=True, width=300),
    )
    text = out.getvalue()
    # then
    assert "\x1b[2J" not in text and "\x1b]8;" not in text and "\x07" not in text
    assert "[bold red]owned[/]" in text  # shown, not obeyed
    assert "\nforged row" not in text
