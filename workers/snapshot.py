"""A worker's cached view of the subscriptions, rebuilt when `relay:subs:version` changes.

Fan-out matches events against the `SubscriptionIndex` of the subscriptions that are on;
delivery reads each delivery's subscription (url, secret, format, on/off) from the same
snapshot. One GET of the version per task keeps both current: every change to a
subscription, including the relay turning one off, bumps the version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from policies import StatementValidationError, SubscriptionIndex, parse_statements
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


class SubscriptionCache:
    """The current snapshot, shared by the threads of a worker process."""

    def __init__(self, *, critical_environments: frozenset[str]) -> None:
        self._critical = critical_environments
        self._lock = threading.Lock()
        self._current: Snapshot | None = None
        self.builds = 0  # how many times the index was rebuilt (observability, tests)

    def get(self, client: Redis) -> Snapshot:
        """The snapshot for the stored version, rebuilt only when the version moved."""
        version = subscriptions.subscriptions_version(client)
        current = self._current
        if current is not None and current.version == version:
            return current
        with self._lock:
            current = self._current
            if current is None or current.version != version:
                # read the version first: a change racing the listing is seen next time
                current = build_snapshot(client, version=version, critical=self._critical)
                self._current = current
                self.builds += 1
        return current


def build_snapshot(client: Redis, *, version: int, critical: frozenset[str]) -> Snapshot:
    """Load every subscription and index the ones that are on."""
    records = {record.id: record for record in subscriptions.list_subscriptions(client)}
    index = SubscriptionIndex(critical_environments=critical)
    for record in records.values():
        if not record.on:
            continue
        try:
            index.add(record.id, parse_statements(record.statements))
        except StatementValidationError as exc:
            # stored policies were validated on write; one that no longer parses gets nothing
            log.error(
                "subscription %s has an invalid policy, skipped: %s",
                record.id,
                exc,
                extra={"subscription_id": record.id},
            )
    return Snapshot(version=version, records=records, index=index)
