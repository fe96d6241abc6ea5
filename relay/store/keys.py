"""Every Redis key the relay uses, in one place (prefix `relay:`).

Layout (types in brackets):

Events (owner: relay/store/events.py)
    relay:seq:event                    [string] INCR gives the next relay event id
    relay:event:{id}                   [string] recorded event JSON (Unleash + relay id)
    relay:events:all                   [zset]   event id, score = id
    relay:events:time                  [zset]   score = createdAt ms: retention, replay
    relay:events:project:{project}     [zset]   event id, score = id
    relay:events:feature:{feature}     [zset]   event id, score = id
    relay:events:pe:{project}:{env}    [zset]   flag events in an env, score = createdAt ms
    relay:events:pg:{project}          [zset]   global (env-less) flag events, score = createdAt
    relay:dedupe:{source}:{producerId} [string] relay id of a producer's event (TTL = retention)
    relay:outbox                       [zset]   event ids awaiting fan-out, score = enqueued ms

Subscriptions (owner: relay/store/subscriptions.py)
    relay:seq:sub                      [string] INCR orders subscriptions by creation
    relay:subs                         [zset]   subscription id, score = creation sequence
    relay:subs:version                 [string] bumped on every change; workers rebuild their index
    relay:subs:entries                 [hash]   subscription id -> its policy entries
    relay:subs:entries:total           [string] their sum (RELAY_MAX_TOTAL_POLICY_ENTRIES)
    relay:sub:{id}                     [string] subscription document JSON
    relay:sub:{id}:status              [hash]   delivery health counters (_status)
    relay:sub:{id}:errors              [list]   last 10 errors, JSON, newest first
    relay:sub:{id}:deliveries          [zset]   recent delivery ids, score = created ms

Deliveries (owner: relay/store/deliveries.py)
    relay:delivery:{id}                [hash]   one (event, subscription) delivery and its state
    relay:delivery:{id}:attempts       [list]   attempts, JSON, oldest first (capped)
    relay:due                          [zset]   delivery ids waiting for an attempt, score = due ms
    relay:claims                       [zset]   claimed delivery ids, score = lease expiry ms
    relay:dead                         [zset]   dead delivery ids, score = died ms
    relay:sub:{id}:inflight            [zset]   deliveries holding a send slot, score = until ms
    relay:sub:{id}:waiting             [zset]   deliveries waiting for a slot/circuit, score = due
    relay:waiting                      [set]    subscriptions with waiting deliveries
    relay:circuits                     [zset]   subscriptions with an open circuit, score = probe ms

Evaluation metrics (owner: relay/store/evaluations.py)
    relay:evals:{env}:{flag}:{minute}  [hash]   "{app}\\x1f{variation}" -> count (TTL = retention);
                                                variation = bool:true | bool:false | variant:{name}
    relay:evals:apps:{env}:{flag}      [set]    apps that evaluated the flag in the env
    relay:evals:minutes:{env}:{flag}   [zset]   minutes with counts for the flag, score = minute
    relay:evals:flags:{env}            [set]    flags evaluated in the env (TTL = retention)
    relay:evals:appflags:{env}:{app}   [set]    flags the app evaluated in the env (TTL = retention)

Access (owner: relay/store/tokens.py)
    relay:tokens                       [zset]   token id, score = created ms
    relay:token:{id}                   [hash]   name, role, hash, createdAt
    relay:token:hash:{sha256}          [string] token id for a hashed secret
    relay:ratelimit:{token}            [hash]   token bucket: tokens, ts
    relay:authfail:{address}           [string] failed authentications from a client address
                                                in the current window (TTL = the window)

Console sessions (owner: relay/store/sessions.py)
    relay:session:{sha256}             [hash]   a console sign-in, by the hash of its cookie:
                                                token, tokenHash, csrf, createdAt (TTL 12 h)
    relay:sessions:{token}             [zset]   a token's session hashes, score = created ms

Operations
    relay:workers                      [zset]   worker hostname, score = last heartbeat ms
    relay:listeners                    [zset]   subscriptions of a `relay listen`, score =
                                                registered ms (owner: relay/store/listeners.py)
    relay:listener:{sub_id}            [string] its `relay listen` is alive (TTL, refreshed)
    relay:sources                      [hash]   pull source name -> JSON config
    relay:source:{name}:cursor         [string] newest producer event id pulled
    relay:source:{name}:status         [hash]   last pull: at, success at, error at, error
    relay:lock:{name}                  [string] short lock (SET NX PX)
    relay:outbox:ids                   [zset] event ids not fanned out yet, by id
    relay:ordered:fanout-wait          [zset] ordered heads waiting for an earlier fan-out
    relay:sub:{id}:order:{key}         [zset] an ordering key's deliveries, by event id
    relay:sub:{id}:orders              [set] a subscription's ordering keys with deliveries
"""

from __future__ import annotations

PREFIX = "relay:"

EVENT_SEQ = f"{PREFIX}seq:event"
EVENTS_ALL = f"{PREFIX}events:all"
EVENTS_TIME = f"{PREFIX}events:time"
OUTBOX = f"{PREFIX}outbox"
# the outbox's event ids by id: the lowest one not fanned out yet, for ordered deliveries
OUTBOX_IDS = f"{PREFIX}outbox:ids"
# ordered heads waiting for every earlier event's fan-out (score: their event id)
FANOUT_WAIT = f"{PREFIX}ordered:fanout-wait"

SUBS = f"{PREFIX}subs"
SUBS_VERSION = f"{PREFIX}subs:version"
SUBS_SEQ = f"{PREFIX}seq:sub"
SUBS_ENTRIES = f"{PREFIX}subs:entries"
SUBS_ENTRIES_TOTAL = f"{PREFIX}subs:entries:total"

DUE = f"{PREFIX}due"
CLAIMS = f"{PREFIX}claims"
DEAD = f"{PREFIX}dead"
WAITING = f"{PREFIX}waiting"
CIRCUITS = f"{PREFIX}circuits"

TOKENS = f"{PREFIX}tokens"
WORKERS = f"{PREFIX}workers"
SOURCES = f"{PREFIX}sources"
LISTENERS = f"{PREFIX}listeners"


def event(event_id: int | str) -> str:
    return f"{PREFIX}event:{event_id}"


def events_by_project(project: str) -> str:
    return f"{PREFIX}events:project:{project}"


def events_by_feature(feature: str) -> str:
    return f"{PREFIX}events:feature:{feature}"


def flag_events_in_env(project: str, environment: str) -> str:
    return f"{PREFIX}events:pe:{project}:{environment}"


def global_flag_events(project: str) -> str:
    return f"{PREFIX}events:pg:{project}"


def dedupe(source: str, producer_id: str) -> str:
    return f"{PREFIX}dedupe:{source}:{producer_id}"


def subscription(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}"


def subscription_status(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}:status"


def subscription_errors(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}:errors"


def subscription_deliveries(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}:deliveries"


def subscription_inflight(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}:inflight"


def subscription_waiting(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}:waiting"


def subscription_order(sub_id: str, order_key: str) -> str:
    """The deliveries of one ordering key of an ordered subscription, by event id."""
    return f"{PREFIX}sub:{sub_id}:order:{order_key}"


def subscription_orders(sub_id: str) -> str:
    """The ordering keys of a subscription that have deliveries (their order keys' names)."""
    return f"{PREFIX}sub:{sub_id}:orders"


def delivery(delivery_id: str) -> str:
    return f"{PREFIX}delivery:{delivery_id}"


def delivery_attempts(delivery_id: str) -> str:
    return f"{PREFIX}delivery:{delivery_id}:attempts"


def evaluations(environment: str, flag: str, minute: int) -> str:
    return f"{PREFIX}evals:{environment}:{flag}:{minute}"


def evaluation_apps(environment: str, flag: str) -> str:
    return f"{PREFIX}evals:apps:{environment}:{flag}"


def evaluation_minutes(environment: str, flag: str) -> str:
    return f"{PREFIX}evals:minutes:{environment}:{flag}"


def evaluated_flags(environment: str) -> str:
    return f"{PREFIX}evals:flags:{environment}"


def app_evaluated_flags(environment: str, app: str) -> str:
    return f"{PREFIX}evals:appflags:{environment}:{app}"


def token(token_id: str) -> str:
    return f"{PREFIX}token:{token_id}"


def token_hash(digest: str) -> str:
    return f"{PREFIX}token:hash:{digest}"


def rate_limit(token_id: str) -> str:
    return f"{PREFIX}ratelimit:{token_id}"


def auth_failures(address: str) -> str:
    return f"{PREFIX}authfail:{address}"


def source_cursor(name: str) -> str:
    return f"{PREFIX}source:{name}:cursor"


def source_status(name: str) -> str:
    return f"{PREFIX}source:{name}:status"


def lock(name: str) -> str:
    return f"{PREFIX}lock:{name}"


def listener(sub_id: str) -> str:
    return f"{PREFIX}listener:{sub_id}"


def session(session_hash: str) -> str:
    return f"{PREFIX}session:{session_hash}"


def token_sessions(token_id: str) -> str:
    return f"{PREFIX}sessions:{token_id}"
