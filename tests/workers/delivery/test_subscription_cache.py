"""The worker's subscription snapshot: rebuilt when the version moves, never stalling readers."""

from __future__ import annotations

import time
from dataclasses import replace

from relay.store import subscriptions
from relay.store.client import Redis
from relay.store.subscriptions import SubscriptionRecord
from tests.support import eventually, subscribe
from workers.delivery.subscription_cache import SubscriptionCache

CRITICAL = frozenset({"production"})


def _store_policies(client: Redis, count: int) -> list[str]:
    """`count` subscriptions of 249 glob resources each: an index that takes a while to build."""
    resources = [f"proj/*abc{n}*:env/*:flag/*x*y{n}*" for n in range(248)]
    statements = [{"effect": "allow", "resources": resources, "actions": ["*"]}]
    return [subscribe(client, statements=statements) for _ in range(count)]


def test_records_are_served_from_the_old_snapshot_while_the_index_is_rebuilt(
    redis_client: Redis,
) -> None:
    """A delivery's look-up answers at once from the old snapshot during a rebuild; the rebuild
    runs once, in the background, and a fan-out (which needs the new index) waits for it."""
    # given: a snapshot, then 200 subscriptions it does not know
    known = subscribe(redis_client)
    cache = SubscriptionCache(critical_environments=CRITICAL)
    old = cache.get(redis_client)
    added = _store_policies(redis_client, 200)
    # when
    started = time.perf_counter()
    records = cache.records(redis_client, sub_ids={known})
    answered = time.perf_counter() - started
    fresh = cache.get(redis_client)
    rebuilt = time.perf_counter() - started
    # then
    assert records is old.records and answered < rebuilt / 5, (answered, rebuilt)
    assert set(added) <= set(fresh.records) and cache.builds == 2
    assert cache.records(redis_client, sub_ids={known}) is fresh.records


def test_a_subscription_missing_from_the_old_snapshot_waits_for_the_new_one(
    redis_client: Redis,
) -> None:
    """Records asked for a subscription created since the snapshot come from a fresh one."""
    cache = SubscriptionCache(critical_environments=CRITICAL)
    cache.get(redis_client)
    created = subscribe(redis_client)
    assert created in cache.records(redis_client, sub_ids={created})


def test_unchanged_policies_are_not_parsed_again(redis_client: Redis) -> None:
    """After one subscription changes, only its policy is parsed again."""
    # given
    ids = _store_policies(redis_client, 3)
    cache = SubscriptionCache(critical_environments=CRITICAL)
    cache.get(redis_client)

    def narrow(record: SubscriptionRecord) -> SubscriptionRecord:
        statements = [{"effect": "allow", "resources": ["proj/a"], "actions": ["*"]}]
        return replace(record, statements=statements)

    # when
    subscriptions.update_subscription(redis_client, sub_id=ids[0], change=narrow)
    snapshot = cache.get(redis_client)
    # then
    assert cache.parsed == 4 and len(snapshot.records) == 3


def test_a_background_rebuild_catches_up_with_the_version(redis_client: Redis) -> None:
    """Records served from an old snapshot start a rebuild: without any fan-out, they catch up."""
    cache = SubscriptionCache(critical_environments=CRITICAL)
    first = subscribe(redis_client)
    cache.get(redis_client)
    subscribe(redis_client)
    eventually(lambda: len(cache.records(redis_client, sub_ids={first})) == 2)
    assert cache.builds == 2
