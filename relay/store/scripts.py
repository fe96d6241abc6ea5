"""The store's Lua scripts (relay/store/lua/*.lua) behind one registry, and each script's
argument layout in one typed function.

Each script is read once per process, at import, and run by EVALSHA; on NOSCRIPT (a
restarted or flushed Redis) it is loaded and run again. Queued on a pipeline, it goes
through redis-py's `Script`, whose pipeline loads it before executing. redis-py errors
become store errors through `translate_errors` (relay/store/client.py), as every other
store call's do.

A call outside a pipeline does not go through `Script`: its two `isinstance` checks against
redis-py's Pipeline classes run typing.Protocol's slow `__instancecheck__` (the client
classes derive from a Protocol); with its argument copies a call costs 4.8-5.6 us of client
CPU through `Script`, 1.6-1.9 us here, translation included, and 0.5-1.0 us for a bare
`execute_command` (16-64 arguments, 2026-12-04), on an ingest request whose server CPU is
about 200 us.

The functions below are the only place that knows the order of a script's KEYS and ARGV,
written in each .lua file's header; they derive every key from relay/store/keys.py. The
record-type modules call them with names, and turn the answers into their own types.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from relay.clock import now_ms
from relay.store import keys
from relay.store.client import Redis, translate_errors

LUA_DIR: Final = Path(__file__).with_name("lua")

Arg = str | bytes | int | float


class LuaScript:
    """One script of relay/store/lua, with the shared functions it uses put before it."""

    def __init__(self, name: str, *, uses: Sequence[str] = ()) -> None:
        self.name = name
        self.files = (*(f"_{shared}.lua" for shared in uses), f"{name}.lua")
        self.source = b"".join((LUA_DIR / file).read_bytes() for file in self.files)
        self.sha = hashlib.sha1(self.source).hexdigest()  # the name Redis knows it by
        # for pipelines; bytes: Script wants its registered client only to encode a str
        # source, and every call names its client (one per process serves every connection)
        self._script = Script(None, self.source)  # type: ignore[arg-type]

    def __call__(self, client: Redis, script_keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the script (on a pipeline: queue it; the pipeline answers when it executes)."""
        if type(client) is Pipeline:  # not isinstance: see the module's docstring
            return self._script(script_keys, args, client=client)
        execute: Callable[..., Any] = client.execute_command
        with translate_errors():
            try:
                return execute("EVALSHA", self.sha, len(script_keys), *script_keys, *args)
            except NoScriptError:
                client.script_load(self.source)
                return execute("EVALSHA", self.sha, len(script_keys), *script_keys, *args)


REGISTRY: Final[dict[str, LuaScript]] = {}


def _register(name: str, *, uses: Sequence[str] = ()) -> LuaScript:
    script = REGISTRY[name] = LuaScript(name, uses=uses)
    return script


# --- events (relay/store/events.py) ------------------------------------------------------

_RECORD: Final = _register("record")
_RECORD_KEYS: Final = (
    keys.EVENT_SEQ,
    keys.EVENTS_ALL,
    keys.EVENTS_TIME,
    keys.OUTBOX,
    keys.OUTBOX_IDS,
)
_RECORD_PREFIXES: Final = (keys.event(""), keys.dedupe("", "")[:-1], keys.token(""))


class EventArgs(NamedTuple):
    """One event as `record` takes it: six ARGV entries, so the script parses nothing."""

    created_ms: str
    producer_id: str  # '' = none
    project_index: str  # index keys, '' = not in that index
    feature_index: str
    flag_index: str
    fields: str | bytes  # the event's JSON without its braces, `id` and `source`


class RequestArgs(Protocol):
    """One request's events as `record` takes them."""

    @property
    def events(self) -> Sequence[EventArgs]: ...
    @property
    def source(self) -> str: ...  # '' = the id of the token behind `token_hash_key`
    @property
    def token_hash_key(self) -> str: ...  # '' = the caller checked the token already


def record(
    client: Redis,
    *,
    requests: Sequence[RequestArgs],
    dedupe_ttl_ms: int,
    now_ms: int,
    allowed_roles: Iterable[str],
) -> list[list[Any]]:
    """record.lua: per request {0, 'unauthorized'}, {0, 'forbidden', role} or
    {1, token id, then (relay id, 1 if new else 0) per event}."""
    args: list[Arg] = [*_RECORD_PREFIXES, dedupe_ttl_ms, now_ms, f" {' '.join(allowed_roles)} "]
    for request in requests:
        source_json = json.dumps(request.source) if request.source else ""
        args += (len(request.events), request.token_hash_key, request.source, source_json)
        for event in request.events:
            args += event
    results: list[list[Any]] = _RECORD(client, _RECORD_KEYS, args)
    return results


# --- tokens, rate limits (relay/store/tokens.py, ratelimit.py) -----------------------------

_FIND_TOKEN: Final = _register("find_token")
_TAKE_FROM_BUCKET: Final = _register("take_from_bucket")
_COUNT_AUTH_FAILURE: Final = _register("count_auth_failure")


def find_token(client: Redis, *, secret_hash: str) -> list[Any] | None:
    """find_token.lua: {token id, flat HGETALL} or None."""
    found: list[Any] | None = _FIND_TOKEN(client, [keys.token_hash(secret_hash)], [keys.token("")])
    return found


def take_from_bucket(
    client: Redis, *, token_id: str, rate: float, burst: int, now_ms: int
) -> tuple[int, int, int]:
    """take_from_bucket.lua: (allowed 1/0, remaining, wait ms)."""
    allowed, remaining, wait = _TAKE_FROM_BUCKET(
        client, [keys.rate_limit(token_id)], [rate, burst, now_ms]
    )
    return int(allowed), int(remaining), int(wait)


def count_auth_failure(client: Redis, *, address: str, window_ms: int) -> tuple[int, int]:
    """count_auth_failure.lua: (failures in the window, ms until it ends)."""
    count, ttl = _COUNT_AUTH_FAILURE(client, [keys.auth_failures(address)], [window_ms])
    return int(count), int(ttl)


# --- locks, pull sources (relay/store/locks.py, sources.py) -------------------------------

_RELEASE_LOCK: Final = _register("release_lock")
_EXTEND_LOCK: Final = _register("extend_lock")
_ADVANCE_CURSOR: Final = _register("advance_cursor")


def release_lock(client: Redis, *, name: str, token: str) -> bool:
    """release_lock.lua: True when it was ours and is released."""
    return bool(_RELEASE_LOCK(client, [keys.lock(name)], [token]))


def extend_lock(client: Redis, *, name: str, token: str, ttl_ms: int) -> bool:
    """extend_lock.lua: True when it was ours and is extended."""
    return bool(_EXTEND_LOCK(client, [keys.lock(name)], [token, ttl_ms]))


def advance_cursor(client: Redis, *, name: str, to: int) -> bool:
    """advance_cursor.lua: True when the cursor moved forward."""
    return bool(_ADVANCE_CURSOR(client, [keys.source_cursor(name)], [to]))


# --- subscriptions and their status (relay/store/subscriptions.py, subscription_status.py) --

_RECORD_SUCCESS: Final = _register("record_success")
_RECORD_FAILURE: Final = _register("record_failure")
_PAUSE: Final = _register("pause")
_CREATE_SUBSCRIPTION: Final = _register("create_subscription")
_SUBSCRIPTIONS_OF_KIND: Final = _register("subscriptions_of_kind")
_DELETE_SUBSCRIPTION: Final = _register("delete_subscription")
_COUNT_ENTRIES: Final = _register("count_entries")
_SUM_ENTRIES: Final = _register("sum_entries")


def record_success(client: Redis, *, sub_id: str, at_ms: int) -> int:
    """record_success.lua: 2 counted and a run of failures ended, 1 counted, 0 gone."""
    status = [keys.subscription(sub_id), keys.subscription_status(sub_id)]
    return int(_RECORD_SUCCESS(client, status, [at_ms]))


def pause(client: Redis, *, sub_id: str, until_ms: int, reason: str, at_ms: int) -> int:
    """pause.lua: 2 a pause began, 1 the current one grew, 0 neither."""
    status = [keys.subscription_status(sub_id), keys.subscription(sub_id)]
    return int(_PAUSE(client, status, [until_ms, reason, at_ms]))


def record_failure(
    client: Redis, *, sub_id: str, at_ms: int, entry_json: str, errors_kept: int
) -> int:
    """record_failure.lua: 2 counted and a run of failures began, 1 counted, 0 gone."""
    status = [
        keys.subscription(sub_id),
        keys.subscription_status(sub_id),
        keys.subscription_errors(sub_id),
    ]
    return int(_RECORD_FAILURE(client, status, [at_ms, entry_json, errors_kept]))


def create_subscription(
    client: Redis,
    *,
    sub_id: str,
    document: str,
    max_count: int,
    entries: int,
    max_entries: int,
    max_in_flight: int | None = None,
    max_per_second: float | None = None,
) -> list[int]:
    """create_subscription.lua: {1} stored, {0} too many, {-1} total not counted, {-2, total}."""
    script_keys = [
        keys.subscription(sub_id),
        keys.SUBS,
        keys.SUBS_VERSION,
        keys.SUBS_SEQ,
        keys.SUBS_ENTRIES,
        keys.SUBS_ENTRIES_TOTAL,
        keys.subscription_status(sub_id),
    ]
    args: list[Arg] = [document, sub_id, max_count, entries, max_entries]
    args += [_or_empty(max_in_flight), _or_empty(max_per_second)]
    return [int(value) for value in _CREATE_SUBSCRIPTION(client, script_keys, args)]


def subscriptions_of_kind(
    client: Redis, *, kind: str, offset: int, limit: int
) -> tuple[list[str], int]:
    """subscriptions_of_kind.lua: a page of the ids of one integration's subscriptions, and
    how many it has."""
    needle = '"kind":' + json.dumps(kind)
    found = _SUBSCRIPTIONS_OF_KIND(
        client, [keys.SUBS], [keys.subscription(""), needle, offset, limit]
    )
    return [str(sub_id) for sub_id in found[1:]], int(found[0])


def delete_subscription(client: Redis, *, sub_id: str, holding: str = "") -> bool:
    """delete_subscription.lua: False when there was none, or its document does not hold
    the text `holding` (when given)."""
    script_keys = [
        keys.subscription(sub_id),
        keys.subscription_status(sub_id),
        keys.subscription_errors(sub_id),
        keys.SUBS,
        keys.SUBS_VERSION,
        keys.SUBS_ENTRIES,
        keys.SUBS_ENTRIES_TOTAL,
        keys.subscription_orders(sub_id),
        keys.DUE,
    ]
    return bool(_DELETE_SUBSCRIPTION(client, script_keys, [sub_id, now_ms(), holding]))


def count_entries(client: Redis, *, sub_ids: Sequence[str]) -> None:
    """count_entries.lua over `sub_ids`."""
    subs = [keys.subscription(sub_id) for sub_id in sub_ids]
    _COUNT_ENTRIES(client, [keys.SUBS_ENTRIES, keys.SUBS_ENTRIES_TOTAL, *subs], sub_ids)


def sum_entries(client: Redis) -> bool:
    """sum_entries.lua: True when the total exists."""
    script_keys = [keys.SUBS_ENTRIES, keys.SUBS_ENTRIES_TOTAL, keys.SUBS]
    return bool(_SUM_ENTRIES(client, script_keys, []))


# --- flag events (relay/store/flag_events.py) ---------------------------------------------

_ID_SPAN: Final = _register("id_span")
_DOCUMENTS_MENTIONING: Final = _register("documents_mentioning")


def id_span(
    client: Redis, *, indexes: Sequence[str], start_ms: int, stop_ms: int
) -> tuple[int, int] | None:
    """id_span.lua: (smallest, largest) relay id in the window, or None."""
    found = _ID_SPAN(client, indexes, [start_ms, stop_ms])
    return (int(found[0]), int(found[1])) if found else None


def documents_mentioning(client: Redis, *, ids: Sequence[str], needle: str) -> list[str]:
    """documents_mentioning.lua: those of `ids` whose stored JSON contains `needle`."""
    found: list[str] = _DOCUMENTS_MENTIONING(client, [], [keys.event(""), needle, *ids])
    return found


# --- deliveries (relay/store/deliveries.py) -----------------------------------------------

_CREATE_DELIVERIES: Final = _register("create_deliveries")
_CLAIM: Final = _register("claim", uses=["admit"])
_FINISH: Final = _register("finish", uses=["promote"])
_WAKE: Final = _register("wake", uses=["promote"])
_TAKE_DUE: Final = _register("take_due")
_RELEASE_FANNED_OUT: Final = _register("release_fanned_out")
_REVIVE: Final = _register("revive")


class NewDeliveryArgs(NamedTuple):
    id: str
    kind: str
    sub_id: str
    event_id: int | None
    order_key: str = ""  # its subscription's ordering key; '' when unordered


class FinishArgs(NamedTuple):
    delivery_id: str
    state: str
    next_at_ms: int | None
    reason: str
    attempt_json: str  # '' = no attempt to record
    sub_id: str  # '' = no slot to free, no reach to count
    reach: str  # 'ok', 'down' or '' (not counted)


class SlotArgs(NamedTuple):
    """A subscription's limits as finish.lua takes them; all 0 = no limits."""

    cap: int
    lease_until_ms: int
    failures: int
    cooldown_ms: int
    cooldown_max_ms: int


def create_deliveries(
    client: Redis,
    *,
    deliveries: Sequence[NewDeliveryArgs],
    now_ms: int,
    due_at_ms: int,
    kept_per_subscription: int,
) -> list[str]:
    """create_deliveries.lua: ids created now or still pending."""
    script_keys = [keys.DUE]
    args: list[Arg] = [now_ms, due_at_ms, kept_per_subscription]
    for item in deliveries:
        script_keys += [keys.delivery(item.id), keys.subscription_deliveries(item.sub_id)]
        event = "" if item.event_id is None else str(item.event_id)
        ordered = bool(item.order_key) and item.event_id is not None
        order = keys.subscription_order(item.sub_id, item.order_key) if ordered else ""
        orders = keys.subscription_orders(item.sub_id) if ordered else ""
        args += [item.id, item.kind, item.sub_id, event, order, orders]
    ids: list[str] = _CREATE_DELIVERIES(client, script_keys, args)
    return ids


def claim(
    client: Redis,
    *,
    deliveries: Sequence[tuple[str, str]],
    now_ms: int,
    lease_until_ms: int,
    cap: int,
) -> tuple[list[Any], list[str]]:
    """claim.lua over (delivery id, its subscription or '') pairs: (flat [id, HGETALL, ...]
    of the claimed, ids whose record names another subscription)."""
    positions = _positions(sub_id for _, sub_id in deliveries)
    script_keys = [keys.DUE, keys.CLAIMS, keys.WAITING]
    for sub_id in positions:
        script_keys += _slot_keys(sub_id)
    script_keys += [keys.delivery(delivery_id) for delivery_id, _ in deliveries]
    args: list[Arg] = [now_ms, lease_until_ms, cap, len(positions), *positions]
    for delivery_id, sub_id in deliveries:
        args += [delivery_id, positions.get(sub_id, 0)]
    args += [keys.OUTBOX_IDS, keys.FANOUT_WAIT]  # read by ordered heads (claim.lua)
    flat, unknown = _CLAIM(client, script_keys, args)
    return list(flat), list(unknown)


def finish(
    client: Redis,
    *,
    results: Sequence[FinishArgs],
    now_ms: int,
    attempts_kept: int,
    ttl_s: int,
    slots: SlotArgs,
) -> tuple[list[str], list[str], list[str], list[str]]:
    """finish.lua: (changed, promoted, circuits opened, circuits closed)."""
    positions = _positions(result.sub_id for result in results)
    script_keys = [keys.DUE, keys.CLAIMS, keys.DEAD, keys.CIRCUITS, keys.WAITING]
    for sub_id in positions:
        script_keys += [*_slot_keys(sub_id), keys.subscription(sub_id)]
    args: list[Arg] = [now_ms, attempts_kept, ttl_s, *slots, len(positions), *positions]
    for result in results:
        script_keys += [
            keys.delivery(result.delivery_id),
            keys.delivery_attempts(result.delivery_id),
        ]
        next_at = "" if result.next_at_ms is None else result.next_at_ms
        args += [result.delivery_id, result.state, next_at, result.reason, result.attempt_json]
        args += [positions.get(result.sub_id, 0), result.reach]
    changed, promoted, opened, closed = _FINISH(client, script_keys, args)
    return list(changed), list(promoted), list(opened), list(closed)


def wake(
    client: Redis,
    *,
    subscriptions: Sequence[tuple[str, bool]],
    now_ms: int,
    lease_until_ms: int,
    cap: int,
    release_max: int,
) -> list[str]:
    """wake.lua over (subscription, release its waiting ones) pairs: ids to enqueue now."""
    script_keys = [keys.DUE, keys.CIRCUITS, keys.WAITING]
    args: list[Arg] = [now_ms, lease_until_ms, cap, release_max]
    for sub_id, release in subscriptions:
        script_keys += _slot_keys(sub_id)
        args += [sub_id, 1 if release else 0]
    ids: list[str] = _WAKE(client, script_keys, args)
    return ids


def release_fanned_out(client: Redis, *, now_ms: int) -> list[str]:
    """release_fanned_out.lua: the ordered heads whose earlier events are all fanned out."""
    ids: list[str] = _RELEASE_FANNED_OUT(
        client, [keys.OUTBOX_IDS, keys.FANOUT_WAIT, keys.DUE], [now_ms]
    )
    return ids


def take_due(client: Redis, *, now_ms: int, requeue_at_ms: int, limit: int) -> list[str]:
    """take_due.lua: ids due now."""
    ids: list[str] = _TAKE_DUE(client, [keys.DUE], [now_ms, requeue_at_ms, limit])
    return ids


def revive(client: Redis, *, delivery_id: str, now_ms: int, due_at_ms: int) -> str | None:
    """revive.lua: the previous state, or None when there is no such delivery."""
    script_keys = [
        keys.delivery(delivery_id),
        keys.delivery_attempts(delivery_id),
        keys.DUE,
        keys.DEAD,
    ]
    previous: str | None = _REVIVE(client, script_keys, [delivery_id, now_ms, due_at_ms])
    return previous


def _positions(sub_ids: Iterable[str]) -> dict[str, int]:
    """Each distinct subscription id (not '') and its position, from 1, as the scripts take them."""
    positions: dict[str, int] = {}
    for sub_id in sub_ids:
        if sub_id and sub_id not in positions:
            positions[sub_id] = len(positions) + 1
    return positions


def _slot_keys(sub_id: str) -> list[str]:
    return [
        keys.subscription_inflight(sub_id),
        keys.subscription_waiting(sub_id),
        keys.subscription_status(sub_id),
    ]


def _or_empty(value: float | None) -> Arg:
    return "" if value is None else value


# --- event search (relay/store/event_search.py) --------------------------------------------

_SEARCH_TIME_PAGE: Final = _register("search_time_page", uses=["newest_first"])
_SEARCH_WALK: Final = _register("search_walk", uses=["newest_first"])
_SEARCH_MEMBERS: Final = _register("search_members", uses=["newest_first"])


def search_time_page(
    client: Redis, *, low: str, high: str, offset: int, limit: int
) -> tuple[int, list[str]]:
    """search_time_page.lua: (events in the window, the page's relay ids newest first)."""
    found = _SEARCH_TIME_PAGE(client, [keys.EVENTS_TIME], [low, high, offset, limit])
    return int(found[0]), [str(member) for member in found[1:]]


class WalkStep(NamedTuple):
    """What one search_walk.lua call walked."""

    cursor: str  # '' = the window is walked to its end
    examined: int
    matched: int
    last_examined: str  # '' = none
    collected: list[str]


def search_walk(
    client: Redis,
    *,
    low: str,
    high: str,
    cursor: str,
    required: Sequence[Sequence[str]],
    examine: int,
    skip: int,
    take: int,
) -> WalkStep:
    """search_walk.lua over the time index from `cursor` ('' = from `high`), keeping events
    in an index of each `required` group."""
    script_keys = [keys.EVENTS_TIME, *(key for group in required for key in group)]
    args: list[Arg] = [low, high, cursor, examine, skip, take, *(len(g) for g in required)]
    found = _SEARCH_WALK(client, script_keys, args)
    collected = [str(member) for member in found[4:]]
    return WalkStep(str(found[0]), int(found[1]), int(found[2]), str(found[3]), collected)


def search_members(
    client: Redis,
    *,
    low: str,
    high: str,
    sources: Sequence[str],
    ids: Sequence[int],
    required: Sequence[Sequence[str]],
) -> list[str]:
    """search_members.lua: the members of `sources` and the given `ids` within the window and
    in an index of each `required` group, newest first."""
    script_keys = [keys.EVENTS_TIME, *sources, *(key for group in required for key in group)]
    args: list[Arg] = [low, high, len(sources), len(ids), *ids, *(len(g) for g in required)]
    return [str(member) for member in _SEARCH_MEMBERS(client, script_keys, args)]


_SEARCH_SIZES: Final = _register("search_sizes")


def search_sizes(client: Redis, *, ids: Sequence[int]) -> list[int]:
    """search_sizes.lua: the JSON length of each event (0 when it is gone)."""
    found = _SEARCH_SIZES(client, [], [keys.event(""), " ".join(map(str, ids))])
    return [int(size) for size in found]
