"""The subscriptions of `relay listen` processes, and the sweep that deletes those a killed
listener left behind (relay/store/listeners.py, workers/delivery/pump.py).

A heartbeat is a Redis key with a real TTL (LISTENER_TTL_MS, 60 s); a test that needs it
expired shortens that TTL to a millisecond rather than wait a minute. The clock given to
the sweep is moved instead.
"""

from __future__ import annotations

from dataclasses import replace

from relay import clock
from relay.cli.listen import take_subscription
from relay.destinations import listener_origin
from relay.settings import Settings
from relay.store import keys, listeners, subscriptions
from relay.store.client import Redis
from tests import support
from tests.support import eventually
from workers.delivery import pump
from workers.delivery.subscription_cache import SubscriptionCache

TTL = listeners.LISTENER_TTL_MS


def listening(client: Redis, settings: Settings, port: int) -> str:
    """The id of the subscription a `relay listen --port PORT` registered just now."""
    origin = listener_origin("127.0.0.1", port)
    return take_subscription(client, settings, origin=origin, policies=[]).record.id


def expire_heartbeat(client: Redis, sub_id: str) -> None:
    """The listener's heartbeat runs out, as it does a minute after the process died."""
    client.pexpire(keys.listener(sub_id), 1)
    eventually(lambda: not client.exists(keys.listener(sub_id)), 5, what="the heartbeat gone")


def registered(client: Redis) -> list[str]:
    return list(client.zrange(keys.LISTENERS, 0, -1))  # type: ignore[arg-type]


def test_an_abandoned_listeners_subscription_is_deleted(
    redis_client: Redis, settings: Settings
) -> None:
    """Registered more than LISTENER_TTL_MS ago and no heartbeat: deleted, and forgotten."""
    # given
    sub_id = listening(redis_client, settings, 9876)
    expire_heartbeat(redis_client, sub_id)
    # when
    removed = listeners.remove_abandoned(redis_client, now_ms=clock.now_ms() + TTL + 1)
    # then
    assert removed == [sub_id]
    assert subscriptions.get_subscription(redis_client, sub_id=sub_id) is None
    assert registered(redis_client) == []


def test_a_listener_with_a_live_heartbeat_is_kept(redis_client: Redis, settings: Settings) -> None:
    """However old its registration, a beating listener's subscription stays."""
    # given
    sub_id = listening(redis_client, settings, 9876)
    assert listeners.beat(redis_client, sub_id=sub_id, now_ms=clock.now_ms())
    # when
    removed = listeners.remove_abandoned(redis_client, now_ms=clock.now_ms() + 10 * TTL)
    # then
    assert removed == []
    assert subscriptions.get_subscription(redis_client, sub_id=sub_id) is not None
    assert registered(redis_client) == [sub_id]


def test_a_listener_registered_just_now_is_kept(redis_client: Redis, settings: Settings) -> None:
    """Younger than LISTENER_TTL_MS, it is kept even without a heartbeat."""
    # given
    sub_id = listening(redis_client, settings, 9876)
    expire_heartbeat(redis_client, sub_id)
    # when
    removed = listeners.remove_abandoned(redis_client, now_ms=clock.now_ms() + TTL - 1_000)
    # then
    assert removed == []
    assert subscriptions.get_subscription(redis_client, sub_id=sub_id) is not None


def test_only_the_abandoned_one_goes(redis_client: Redis, settings: Settings) -> None:
    """Three listeners and a plain subscription: only the old silent listener is deleted."""
    # given
    plain = support.subscribe(redis_client)
    abandoned = listening(redis_client, settings, 9001)
    alive = listening(redis_client, settings, 9002)
    later = clock.now_ms() + TTL + 1
    young = listening(redis_client, settings, 9003)
    listeners.register(redis_client, sub_id=young, now_ms=later)  # registered at `later`
    for sub_id in (abandoned, young):
        expire_heartbeat(redis_client, sub_id)
    # when
    removed = listeners.remove_abandoned(redis_client, now_ms=later)
    # then
    assert removed == [abandoned]
    left = {r.id for r in subscriptions.list_subscriptions(redis_client)}
    assert left == {plain, alive, young}
    assert sorted(registered(redis_client)) == sorted([alive, young])


def test_a_subscription_already_deleted_is_forgotten(
    redis_client: Redis, settings: Settings
) -> None:
    """Deleted through the API while its listener was killed: the sweep forgets its id."""
    # given
    sub_id = listening(redis_client, settings, 9876)
    assert subscriptions.delete_subscription(redis_client, sub_id=sub_id)
    expire_heartbeat(redis_client, sub_id)
    # when
    removed = listeners.remove_abandoned(redis_client, now_ms=clock.now_ms() + TTL + 1)
    # then
    assert removed == []
    assert registered(redis_client) == []


def test_the_sweep_with_a_later_clock_deletes_an_abandoned_listener(
    redis_client: Redis, settings: Settings
) -> None:
    """pump.sweep runs remove_abandoned and counts what it deleted."""
    # given
    sub_id = listening(redis_client, settings, 9876)
    expire_heartbeat(redis_client, sub_id)
    cache = SubscriptionCache(critical_environments=settings.critical_set)
    later = clock.now_ms() / 1000 + TTL / 1000 + 1
    # when
    counts = pump.sweep(
        redis_client, settings=settings, cache=cache, enqueue=lambda ids: None, clock=lambda: later
    )
    # then
    assert counts["listeners"] == 1
    assert subscriptions.get_subscription(redis_client, sub_id=sub_id) is None


def test_a_subscription_moved_away_from_its_listener_is_not_swept(
    redis_client: Redis, settings: Settings
) -> None:
    """Once its URL changed it is no listener's: the sweep forgets it but keeps it."""
    # given
    sub_id = listening(redis_client, settings, 9876)

    def to_public(record: subscriptions.SubscriptionRecord) -> subscriptions.SubscriptionRecord:
        return replace(record, config={**record.config, "url": "https://1.1.1.1/hook"})

    moved = subscriptions.update_subscription(redis_client, sub_id=sub_id, change=to_public)
    assert moved is not None and moved.local_listener is None
    expire_heartbeat(redis_client, sub_id)
    # when
    removed = listeners.remove_abandoned(redis_client, now_ms=clock.now_ms() + TTL + 1)
    # then
    assert removed == []
    assert subscriptions.get_subscription(redis_client, sub_id=sub_id) is not None


def test_only_a_marked_document_is_deleted_as_a_listeners(
    redis_client: Redis, settings: Settings
) -> None:
    """The delete reads the mark in the same atomic step: an unmarked subscription stays, even
    one whose writer-given name spells the mark's text; a marked one goes."""
    # given
    forged = support.subscription(redis_client, name='"localListener":"http://127.0.0.1:1"')
    marked = listening(redis_client, settings, 9877)
    # when / then
    assert not subscriptions.delete_listener_subscription(redis_client, sub_id=forged.id)
    assert subscriptions.get_subscription(redis_client, sub_id=forged.id) is not None
    assert subscriptions.delete_listener_subscription(redis_client, sub_id=marked)
    assert subscriptions.get_subscription(redis_client, sub_id=marked) is None
