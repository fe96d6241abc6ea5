"""Audit-log subscriptions: documents in Redis, changed under optimistic concurrency.

Every change (create, update, delete, turn off) bumps `relay:subs:version` in the same
transaction, so a worker that sees the version unchanged knows its subscription index is
current. Updates WATCH the document and retry when another writer got there first: two
concurrent changes are both applied, never one lost.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import redis
from redis.client import Pipeline

from relay.errors import RelayError, StoreError
from relay.store import keys, subscription_status
from relay.store.client import Redis, translate_errors

# how long deliveries are still signed with the secret a change replaced
SECRET_OVERLAP_MS = 24 * 3600 * 1000
_MAX_ATTEMPTS = 200

# a script, so that only a real deletion bumps the version, in the same atomic step
# KEYS: subscription, status, errors, index, version. ARGV: id.
_DELETE = """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('INCR', KEYS[5])
return 1
"""


# a script, so that the count check and the insert are one atomic step: concurrent creates
# never pass the limit. KEYS: subscription, index, version, sequence. ARGV: document, id, max.
_CREATE = """
local max = tonumber(ARGV[3])
if max > 0 and redis.call('ZCARD', KEYS[2]) >= max then return 0 end
local sequence = redis.call('INCR', KEYS[4])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], sequence, ARGV[2])
redis.call('INCR', KEYS[3])
return 1
"""


class TooManySubscriptionsError(RelayError):
    """A create found `limit` subscriptions stored already."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} subscriptions are stored already")
        self.limit = limit


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
) -> SubscriptionRecord:
    """Store a new subscription (its id is generated) and bump the version.

    With `max_count`, raises TooManySubscriptionsError when that many are stored already.
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
    )
    # a sequence, not the clock, orders the list: two creates in one millisecond stay in order
    with translate_errors():
        stored = client.eval(
            _CREATE,
            4,
            keys.subscription(record.id),
            keys.SUBS,
            keys.SUBS_VERSION,
            keys.SUBS_SEQ,
            _encode(record),
            record.id,
            max_count or 0,
        )
    if not stored:
        raise TooManySubscriptionsError(max_count or 0)
    return record


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
    client: Redis, *, offset: int, limit: int
) -> tuple[list[SubscriptionRecord], int]:
    """`limit` subscriptions from `offset`, oldest first, and how many there are in all."""
    with translate_errors():
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


def update_subscription(client: Redis, *, sub_id: str, change: Change) -> SubscriptionRecord | None:
    """Apply `change` to the current document atomically; None if there is no such subscription.

    `change` may run several times (once per conflicting writer) and must be pure; an
    exception it raises aborts the update with nothing written. A changed secret keeps the
    replaced one as `previous_secret` for `SECRET_OVERLAP_MS`.
    """
    return _transact(client, sub_id=sub_id, change=change, turned_off_reason=None)


def turn_off(client: Redis, *, sub_id: str, reason: str) -> None:
    """Turn a subscription off on the relay's own decision; `reason` is shown in `_status`."""

    def switch_off(record: SubscriptionRecord) -> SubscriptionRecord:
        return replace(record, on=False)

    _transact(client, sub_id=sub_id, change=switch_off, turned_off_reason=reason)


def delete_subscription(client: Redis, *, sub_id: str) -> bool:
    """Delete a subscription with its status; False if there was none."""
    status_key, errors_key = subscription_status.status_keys(sub_id)
    with translate_errors():
        deleted = client.eval(
            _DELETE,
            5,
            keys.subscription(sub_id),
            status_key,
            errors_key,
            keys.SUBS,
            keys.SUBS_VERSION,
            sub_id,
        )
    return bool(deleted)


def now_ms() -> int:
    return int(time.time() * 1000)


def _transact(
    client: Redis, *, sub_id: str, change: Change, turned_off_reason: str | None
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
                    if updated == current:
                        return current
                    pipe.multi()
                    _queue_write(pipe, current, updated, turned_off_reason)
                    pipe.execute()
                    return updated
                except redis.WatchError:
                    continue
    raise StoreError(f"subscription {sub_id} changed {_MAX_ATTEMPTS} times during one update")


def _queue_write(
    pipe: Pipeline, current: SubscriptionRecord, updated: SubscriptionRecord, reason: str | None
) -> None:
    pipe.set(keys.subscription(updated.id), _encode(updated))
    if reason is not None:
        subscription_status.queue_turned_off(pipe, sub_id=updated.id, reason=reason, at_ms=now_ms())
    elif updated.on and not current.on:
        subscription_status.queue_turned_on(pipe, sub_id=updated.id)
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
    return json.dumps(document, separators=(",", ":"))


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
    )
