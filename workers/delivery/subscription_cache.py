"""A worker's cached view of the subscriptions, rebuilt when `relay:subs:version` changes.

Fan-out matches events against the `SubscriptionIndex` of the subscriptions that are on;
delivery reads each delivery's subscription (url, secret, format, on/off) from the same
snapshot. One GET of the version per task keeps both current: every change to a
subscription, including the relay turning one off, bumps the version.

A rebuild parses and indexes every policy (up to RELAY_MAX_TOTAL_POLICY_ENTRIES entries:
seconds at the budget, parsing most of it), so it never holds up deliveries: they keep
reading the old snapshot while one thread builds the new one aside, then it is swapped in.
Fan-out waits for the new index (an event recorded after a change answered must be matched
against it), and a delivery whose subscription is newer than the snapshot waits too.
Policies whose statements did not change are not parsed again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from policies import Statement, StatementValidationError, SubscriptionIndex, parse_statements
from relay.store import subscriptions
from relay.store.client import Redis
from relay.store.subscriptions import SubscriptionRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """Every subscription by id at one version, and the index of those that are on."""

    version: int
    records: Mapping[str, SubscriptionRecord]
    index: SubscriptionIndex
    # the parsed policy of each subscription that is on, reused by the next build
    policies: Mapping[str, Sequence[Statement]] = field(default_factory=dict)


class SubscriptionCache:
    """The current snapshot, shared by the threads of a worker process."""

    def __init__(self, *, critical_environments: frozenset[str]) -> None:
        self._critical = critical_environments
        self._building = threading.Lock()  # one build at a time; readers never take it
        self._current: Snapshot | None = None
        self.builds = 0  # how many times the index was rebuilt (observability, tests)
        self.parsed = 0  # how many policies were parsed by those builds

    def get(self, client: Redis) -> Snapshot:
        """The snapshot for the stored version, rebuilt only when the version moved.

        Waits for a rebuild under way: fan-out needs the index of every change made so far.
        """
        version = subscriptions.subscriptions_version(client)
        current = self._current
        if current is not None and current.version == version:
            return current
        with self._building:
            current = self._current
            if current is None or current.version != version:
                current = self._rebuild(client)
        return current

    def records(
        self, client: Redis, *, sub_ids: Collection[str]
    ) -> Mapping[str, SubscriptionRecord]:
        """Subscriptions for delivery: from the current snapshot even when the version moved
        (a rebuild then starts in the background), unless one of `sub_ids` is missing from
        it (created since): then from the new snapshot, waiting for it.

        A subscription changed, turned off or deleted is seen once the rebuild is done.
        """
        current = self._current
        if current is None or not all(sub_id in current.records for sub_id in sub_ids):
            return self.get(client).records
        if subscriptions.subscriptions_version(client) != current.version:
            self._rebuild_in_background(client)
        return current.records

    def _rebuild(self, client: Redis) -> Snapshot:
        # the caller holds `_building`; the version is read first: a change racing the
        # listing is seen next time
        version = subscriptions.subscriptions_version(client)
        snapshot = build_snapshot(
            client, version=version, critical=self._critical, previous=self._current
        )
        self.parsed += sum(
            1
            for sub_id, policy in snapshot.policies.items()
            if not _reused(sub_id, policy, self._current)
        )
        self._current = snapshot
        self.builds += 1
        return snapshot

    def _rebuild_in_background(self, client: Redis) -> None:
        if not self._building.acquire(blocking=False):
            return  # a build is under way: its snapshot serves next
        threading.Thread(
            target=self._rebuild_and_release,
            args=(client,),
            name="subscription-index",
            daemon=True,
        ).start()

    def _rebuild_and_release(self, client: Redis) -> None:
        try:
            self._rebuild(client)
        except Exception:
            # the old snapshot keeps serving; a later look-up that sees the version moved retries
            log.exception("rebuilding the subscription index failed")
        finally:
            self._building.release()


def build_snapshot(
    client: Redis, *, version: int, critical: frozenset[str], previous: Snapshot | None = None
) -> Snapshot:
    """Load every subscription and index the ones that are on, reusing `previous`'s parsed
    policies where the statements are unchanged."""
    records = {record.id: record for record in subscriptions.list_subscriptions(client)}
    index = SubscriptionIndex(critical_environments=critical)
    policies: dict[str, Sequence[Statement]] = {}
    for record in records.values():
        if not record.on:
            continue
        policy = _policy(record, previous)
        if policy is not None:
            index.add(record.id, policy)
            policies[record.id] = policy
    return Snapshot(version=version, records=records, index=index, policies=policies)


def _policy(record: SubscriptionRecord, previous: Snapshot | None) -> Sequence[Statement] | None:
    if previous is not None and record.id in previous.policies:
        before = previous.records[record.id]
        if before.statements == record.statements:
            return previous.policies[record.id]
    try:
        return parse_statements(record.statements)
    except StatementValidationError as exc:
        # stored policies were validated on write; one that no longer parses gets nothing
        log.error(
            "subscription %s has an invalid policy, skipped: %s",
            record.id,
            exc,
            extra={"subscription_id": record.id},
        )
        return None


def _reused(sub_id: str, policy: Sequence[Statement], previous: Snapshot | None) -> bool:
    return previous is not None and previous.policies.get(sub_id) is policy
