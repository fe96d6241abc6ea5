"""Audit-log subscriptions: documents in Redis, changed under optimistic concurrency.

Every change (create, update, delete, turn off) bumps `relay:subs:version` in the same
transaction, so a worker that sees the version unchanged knows its subscription index is
current. Updates WATCH the document and retry when another writer got there first: two
concurrent changes are both applied, never one lost.

The policy entries of every subscription together are bounded (RELAY_MAX_TOTAL_POLICY_ENTRIES:
each worker indexes all of them at every change and matches every event against them), so
each subscription's count is kept in `relay:subs:entries` and their sum in
`relay:subs:entries:total`, changed in the same atomic step as the document. Subscriptions
stored before the counts existed are counted once, when the total is first needed.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import redis
from redis.client import Pipeline

from relay.clock import now_ms
from relay.errors import RelayError, StoreError
from relay.store import keys, scripts, subscription_status
from relay.store.client import Redis, confirm_replicas, translate_errors

# how long deliveries are still signed with the secret a change replaced
SECRET_OVERLAP_MS = 24 * 3600 * 1000
_MAX_ATTEMPTS = 200

# the lists whose entries count against RELAY_MAX_POLICY_ENTRIES and the total budget
ENTRY_LISTS = ("resources", "notResources", "actions", "notActions")
_COUNT_BATCH = 500


class TooManySubscriptionsError(RelayError):
    """A create found `limit` subscriptions stored already."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} subscriptions are stored already")
        self.limit = limit


class TooManyPolicyEntriesError(RelayError):
    """A create or update would take the entries of all policies past `limit`."""

    def __init__(self, limit: int, *, stored: int, adding: int) -> None:
        super().__init__(
            f"the policies of all subscriptions have {stored} entries; {adding} more would "
            f"pass {limit}"
        )
        self.limit = limit
        self.stored = stored
        self.adding = adding


# a subscription's `delivery.ordering`: none, one key per flag (within its project), one key
ORDER_NONE, ORDER_FLAG, ORDER_SUBSCRIPTION = "none", "flag", "subscription"
ORDERINGS = (ORDER_NONE, ORDER_FLAG, ORDER_SUBSCRIPTION)


@dataclass(frozen=True)
class SubscriptionRecord:
    """One stored subscription; `config` holds url, secret, format and headers."""

    id: str
    integration_key: str
    name: str
    config: dict[str, Any]
    statements: list[dict[str, Any]]  # wire form, as validated by `policies`
    on: bool
    tags: list[str]
    created_at: int
    previous_secret: str | None = None
    previous_secret_until: int | None = None
    # the config fields its integration's manifest marks isSecret (masked in every answer)
    secret_fields: tuple[str, ...] = ()
    # how it is fed: `ordering` (none, flag, subscription), `maxPerSecond` (a number or
    # None), `maxInFlight` (an int or None: RELAY_SUBSCRIPTION_MAX_IN_FLIGHT)
    delivery: dict[str, Any] = field(default_factory=dict)
    # the loopback origin (`http://127.0.0.1:9876`) of the `relay listen` this subscription
    # belongs to: its deliveries may reach that origin, which the destination guard refuses
    # to everything else. Set only by the CLI, never through the API; a changed URL drops it.
    local_listener: str | None = None

    @property
    def ordering(self) -> str:
        value = self.delivery.get("ordering")
        return value if isinstance(value, str) else ORDER_NONE

    @property
    def max_in_flight(self) -> int | None:
        value = self.delivery.get("maxInFlight")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def max_per_second(self) -> float | None:
        value = self.delivery.get("maxPerSecond")
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
        return None

    @property
    def secret(self) -> str:
        return str(self.config.get("secret", ""))

    def signing_secrets(self, *, now_ms: int) -> list[str]:
        """The secrets to sign with at `now_ms`: the current one, then a replaced one in overlap."""
        found = [self.secret] if self.secret else []
        if self.previous_secret and (self.previous_secret_until or 0) > now_ms:
            found.append(self.previous_secret)
        return found


Change = Callable[[SubscriptionRecord], SubscriptionRecord]


def create_subscription(
    client: Redis,
    *,
    integration_key: str,
    name: str,
    config: dict[str, Any],
    statements: list[dict[str, Any]],
    on: bool,
    tags: list[str],
    max_count: int | None = None,
    max_entries: int | None = None,
    secret_fields: tuple[str, ...] = (),
    delivery: dict[str, Any] | None = None,
    local_listener: str | None = None,
) -> SubscriptionRecord:
    """Store a new subscription (its id is generated) and bump the version.

    With `max_count`, raises TooManySubscriptionsError when that many are stored already;
    with `max_entries`, TooManyPolicyEntriesError when its policy entries would take those
    of all subscriptions past it. Create, update and delete raise NotReplicatedError when
    the client's write concern is not met (the primary holds the change).
    """
    record = SubscriptionRecord(
        id=secrets.token_hex(12),
        integration_key=integration_key,
        name=name,
        config=config,
        statements=statements,
        on=on,
        tags=tags,
        created_at=now_ms(),
        secret_fields=secret_fields,
        delivery=dict(delivery or {}),
        local_listener=local_listener,
    )
    entries = policy_entries(statements)
    # a sequence, not the clock, orders the list: two creates in one millisecond stay in order
    for _ in range(_MAX_ATTEMPTS):
        # a script, so that the checks and the insert are one atomic step: concurrent
        # creates never pass a limit
        answer = scripts.create_subscription(
            client,
            sub_id=record.id,
            document=_encode(record),
            max_count=max_count or 0,
            entries=entries,
            max_entries=max_entries or 0,
            max_in_flight=record.max_in_flight,
            max_per_second=record.max_per_second,
        )
        if answer[0] == 1:
            confirm_replicas(client, what="subscription created")
            return record
        if answer[0] == 0:
            raise TooManySubscriptionsError(max_count or 0)
        if answer[0] == -2:
            raise TooManyPolicyEntriesError(max_entries or 0, stored=answer[1], adding=entries)
        count_stored_entries(client)
    raise StoreError("the policy entries of the stored subscriptions could not be counted")


def get_subscription(client: Redis, *, sub_id: str) -> SubscriptionRecord | None:
    """The subscription with this id, or None."""
    with translate_errors():
        raw = client.get(keys.subscription(sub_id))
    return None if raw is None else _decode(str(raw))


def list_subscriptions(
    client: Redis, *, integration_key: str | None = None
) -> list[SubscriptionRecord]:
    """Every subscription (of one integration when given), oldest first."""
    with translate_errors():
        ids: list[str] = client.zrange(keys.SUBS, 0, -1)  # type: ignore[assignment]
        raws: list[str | None] = (
            client.mget([keys.subscription(sub_id) for sub_id in ids]) if ids else []  # type: ignore[assignment]
        )
    records = [_decode(raw) for raw in raws if raw is not None]
    if integration_key is None:
        return records
    return [record for record in records if record.integration_key == integration_key]


def subscription_page(
    client: Redis, *, offset: int, limit: int, kind: str | None = None
) -> tuple[list[SubscriptionRecord], int]:
    """`limit` subscriptions (of integration `kind`, else of all) from `offset`, oldest
    first, and how many there are."""
    with translate_errors():
        if kind is not None:
            ids, total = scripts.subscriptions_of_kind(
                client, kind=kind, offset=offset, limit=limit
            )
        else:
            pipe = client.pipeline(transaction=True)
            pipe.zrange(keys.SUBS, offset, offset + limit - 1)
            pipe.zcard(keys.SUBS)
            ids, total = pipe.execute()
        raws: list[str | None] = (
            client.mget([keys.subscription(sub_id) for sub_id in ids]) if ids else []  # type: ignore[assignment]
        )
    return [_decode(raw) for raw in raws if raw is not None], int(total)


def subscriptions_version(client: Redis) -> int:
    """A counter bumped by every change to any subscription."""
    with translate_errors():
        value = client.get(keys.SUBS_VERSION)
    return int(value or 0)


def update_subscription(
    client: Redis, *, sub_id: str, change: Change, max_entries: int | None = None
) -> SubscriptionRecord | None:
    """Apply `change` to the current document atomically; None if there is no such subscription.

    `change` may run several times (once per conflicting writer) and must be pure; an
    exception it raises aborts the update with nothing written. A changed secret keeps the
    replaced one as `previous_secret` for `SECRET_OVERLAP_MS`; a changed URL closes the
    circuit (the new endpoint is tried at once). With `max_entries`, raises
    TooManyPolicyEntriesError, nothing written, when the change adds policy entries that
    would take those of all subscriptions past it.
    """
    changed = _transact(
        client, sub_id=sub_id, change=change, turned_off_reason=None, max_entries=max_entries
    )
    if changed is not None:  # none: no such subscription, nothing written (404)
        confirm_replicas(client, what="subscription changed")
    return changed


def turn_off(client: Redis, *, sub_id: str, reason: str) -> None:
    """Turn a subscription off on the relay's own decision; `reason` is shown in `_status`."""

    def switch_off(record: SubscriptionRecord) -> SubscriptionRecord:
        return replace(record, on=False)

    _transact(client, sub_id=sub_id, change=switch_off, turned_off_reason=reason)


def delete_subscription(client: Redis, *, sub_id: str) -> bool:
    """Delete a subscription with its status; False if there was none."""
    return _delete(client, sub_id=sub_id, holding="")


def delete_listener_subscription(client: Redis, *, sub_id: str) -> bool:
    """Delete the subscription only while it still carries a `relay listen` mark, in one
    atomic step: one a writer has just moved to another URL (the mark dropped) stays."""
    return _delete(client, sub_id=sub_id, holding=_LISTENER_MARK)


def _delete(client: Redis, *, sub_id: str, holding: str) -> bool:
    # a script, so that only a real deletion bumps the version, in the same atomic step
    deleted = scripts.delete_subscription(client, sub_id=sub_id, holding=holding)
    if deleted:
        confirm_replicas(client, what="subscription deleted")
    return deleted


def policy_entries(statements: list[dict[str, Any]]) -> int:
    """The entries of a policy: its statements' resources, notResources, actions, notActions."""
    return sum(len(statement.get(name) or []) for statement in statements for name in ENTRY_LISTS)


def count_stored_entries(client: Redis) -> None:
    """Count the policy entries of subscriptions stored without a count, then set the total.

    Needed once, after an upgrade from a relay that kept no counts: batches of scripts, so
    Redis is never held long; safe to run concurrently (a subscription is counted once).
    """
    with translate_errors():
        for _ in range(3):
            ids: list[str] = client.zrange(keys.SUBS, 0, -1)  # type: ignore[assignment]
            for start in range(0, len(ids), _COUNT_BATCH):
                scripts.count_entries(client, sub_ids=ids[start : start + _COUNT_BATCH])
            if scripts.sum_entries(client):
                return
    raise StoreError("subscriptions kept being stored without a count while counting")


def _transact(
    client: Redis,
    *,
    sub_id: str,
    change: Change,
    turned_off_reason: str | None,
    max_entries: int | None = None,
) -> SubscriptionRecord | None:
    key = keys.subscription(sub_id)
    with translate_errors():
        for _ in range(_MAX_ATTEMPTS):
            with client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    if raw is None:
                        return None
                    current = _decode(str(raw))
                    updated = _with_rotation(current, change(current), at_ms=now_ms())
                    if updated.config.get("url") != current.config.get("url"):
                        # a listener's loopback allowance is for its own URL, no other
                        updated = replace(updated, local_listener=None)
                    if updated == current:
                        return current
                    added = _entries_added(pipe, current, updated, max_entries)
                    if added is None:
                        count_stored_entries(client)
                        continue
                    pipe.multi()
                    _queue_write(pipe, current, updated, turned_off_reason)
                    if added:
                        pipe.hincrby(keys.SUBS_ENTRIES, sub_id, added)
                        pipe.incrby(keys.SUBS_ENTRIES_TOTAL, added)
                    pipe.execute()
                    return updated
                except redis.WatchError:
                    continue
    raise StoreError(f"subscription {sub_id} changed {_MAX_ATTEMPTS} times during one update")


def _entries_added(
    pipe: Pipeline, current: SubscriptionRecord, updated: SubscriptionRecord, limit: int | None
) -> int | None:
    """How many policy entries the change adds (negative: frees); None if not counted yet.

    Raises TooManyPolicyEntriesError past `limit`. WATCHes the total, so that a concurrent
    change of any count makes this update try again with the new total.
    """
    if updated.statements == current.statements:
        return 0
    pipe.watch(keys.SUBS_ENTRIES_TOTAL)  # type: ignore[no-untyped-call]
    counted, total = pipe.hget(keys.SUBS_ENTRIES, current.id), pipe.get(keys.SUBS_ENTRIES_TOTAL)
    if counted is None or total is None:
        return None
    added = policy_entries(updated.statements) - int(str(counted))
    if limit and added > 0 and int(str(total)) + added > limit:
        raise TooManyPolicyEntriesError(limit, stored=int(str(total)), adding=added)
    return added


def _queue_write(
    pipe: Pipeline, current: SubscriptionRecord, updated: SubscriptionRecord, reason: str | None
) -> None:
    pipe.set(keys.subscription(updated.id), _encode(updated))
    if reason is not None:
        subscription_status.queue_turned_off(pipe, sub_id=updated.id, reason=reason, at_ms=now_ms())
    elif updated.on and not current.on:
        subscription_status.queue_turned_on(pipe, sub_id=updated.id)
    if updated.config.get("url") != current.config.get("url"):
        subscription_status.queue_circuit_closed(pipe, sub_id=updated.id)
    if updated.config != current.config:  # their text may quote a value no longer stored
        subscription_status.queue_errors_cleared(pipe, sub_id=updated.id)
    if updated.delivery != current.delivery:
        subscription_status.queue_limits(
            pipe,
            sub_id=updated.id,
            max_in_flight=updated.max_in_flight,
            max_per_second=updated.max_per_second,
        )
    pipe.incr(keys.SUBS_VERSION)


def _with_rotation(
    current: SubscriptionRecord, updated: SubscriptionRecord, *, at_ms: int
) -> SubscriptionRecord:
    if not current.secret or updated.secret == current.secret:
        return updated
    return replace(
        updated,
        previous_secret=current.secret,
        previous_secret_until=at_ms + SECRET_OVERLAP_MS,
    )


def _encode(record: SubscriptionRecord) -> str:
    document = {
        "_id": record.id,
        "kind": record.integration_key,
        "name": record.name,
        "config": record.config,
        "statements": record.statements,
        "on": record.on,
        "tags": record.tags,
        "createdAt": record.created_at,
        "previousSecret": record.previous_secret,
        "previousSecretUntil": record.previous_secret_until,
    }
    if record.secret_fields:
        document["secretFields"] = list(record.secret_fields)
    if record.delivery:
        document["delivery"] = record.delivery
    if record.local_listener:
        document["localListener"] = record.local_listener
    return json.dumps(document, separators=(",", ":"))


# how a marked document reads (`_encode`): the key and the opening quote of its value. No
# other field can hold this text: strings are JSON-escaped (`\"`) and config keys are checked
_LISTENER_MARK = '"localListener":"'


def _decode(raw: str) -> SubscriptionRecord:
    document: dict[str, Any] = json.loads(raw)
    return SubscriptionRecord(
        id=document["_id"],
        integration_key=document["kind"],
        name=document["name"],
        config=document["config"],
        statements=document["statements"],
        on=bool(document["on"]),
        tags=document["tags"],
        created_at=int(document["createdAt"]),
        previous_secret=document.get("previousSecret"),
        previous_secret_until=document.get("previousSecretUntil"),
        secret_fields=tuple(document.get("secretFields") or ()),
        delivery=dict(document.get("delivery") or {}),
        local_listener=document.get("localListener"),
    )
