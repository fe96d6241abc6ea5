"""Pull sources: Unleash servers the relay polls for events its webhook may have missed.

A source's name is also the `source` of the events it yields: Unleash's webhook addon
posting to `/api/events?source=<name>` and the pull of `<name>` dedupe against each other.
The admin token is stored as given (the relay must present it to Unleash), so a source's
URL passes the destination guard (`relay.destinations`, as webhook URLs do) before it is
stored; the workers check the addresses again at each connection. Each pull's outcome is
kept as the source's status (`record_pull`, `pull_status`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from policies.catalog import RELAY_SOURCE
from relay.destinations import (
    GUARD_HINT,
    DestinationError,
    UnresolvableHostError,
    check_destination,
)
from relay.errors import FieldProblem, InvalidRequestError
from relay.settings import Settings
from relay.store import keys, scripts
from relay.store.client import Redis, translate_errors

SETTINGS_SOURCE: Final = "unleash"
# no ':' so that `relay:dedupe:{source}:{producerId}` stays unambiguous
SOURCE_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
STATUS_ERROR_CHARS: Final = 500  # of a pull's error kept in the source's status


@dataclass(frozen=True)
class PullSource:
    """An Unleash server to poll: its base URL and an admin token."""

    name: str
    url: str
    token: str = field(repr=False)  # an admin secret: kept out of logs and reprs
    # from RELAY_UNLEASH_URL/TOKEN rather than stored (errors then name the setting)
    from_settings: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class PullStatus:
    """How the last pulls of a source went (ms since the epoch; None: never)."""

    last_pull_at: int | None = None
    last_success_at: int | None = None
    last_error_at: int | None = None
    last_error: str | None = None  # of the last pull, None when it succeeded


def check_source_name(name: str, *, attribute: str = "source") -> None:
    """InvalidRequestError unless `name` is 1-100 letters, digits, `.`, `_` or `-`, and not
    `relay`: the source of relay's own events, which no producer may pass as."""
    if name.lower() == RELAY_SOURCE:
        raise InvalidRequestError(
            "the source name relay is reserved for relay's own events",
            [FieldProblem(attribute, "relay is reserved for relay's own events")],
        )
    if not SOURCE_NAME.match(name):
        raise InvalidRequestError(
            f"invalid source name {name!r}",
            [FieldProblem(attribute, "use 1 to 100 letters, digits, '.', '_' or '-'")],
        )


def add_source(client: Redis, *, name: str, url: str, token: str, settings: Settings) -> None:
    """Add a pull source, or replace the one of that name (its cursor resets if the URL changes).

    InvalidRequestError when the name, the URL or the token is unusable, or when the URL's
    host resolves to an address the destination guard refuses under `settings`.
    """
    check_source_name(name, attribute="name")
    _check_url(url)
    if not token.strip():
        raise InvalidRequestError("token is empty", [FieldProblem("token", "must not be empty")])
    _check_destination(url, settings=settings)
    config = json.dumps({"url": url.rstrip("/"), "token": token})
    with translate_errors():
        previous = client.hget(keys.SOURCES, name)
        pipe = client.pipeline(transaction=True)
        pipe.hset(keys.SOURCES, name, config)
        if previous is not None and json.loads(previous)["url"] != url.rstrip("/"):
            pipe.delete(keys.source_cursor(name), keys.source_status(name))
        pipe.execute()


def list_sources(client: Redis) -> list[PullSource]:
    """The stored pull sources, by name."""
    with translate_errors():
        stored: dict[str, str] = client.hgetall(keys.SOURCES)  # type: ignore[assignment]
    return [_source(name, stored[name]) for name in sorted(stored)]


def remove_source(client: Redis, *, name: str) -> bool:
    """Remove a stored pull source and its cursor; False if there was none."""
    with translate_errors():
        pipe = client.pipeline(transaction=True)
        pipe.hdel(keys.SOURCES, name)
        pipe.delete(keys.source_cursor(name), keys.source_status(name))
        removed, _ = pipe.execute()
    return bool(removed)


def sources_to_pull(client: Redis, *, settings: Settings) -> list[PullSource]:
    """Stored sources plus `unleash` from RELAY_UNLEASH_URL/TOKEN (a stored `unleash` wins)."""
    sources = list_sources(client)
    stored = {source.name for source in sources}
    if settings.unleash_url and settings.unleash_token and SETTINGS_SOURCE not in stored:
        url = settings.unleash_url.rstrip("/")
        configured = PullSource(SETTINGS_SOURCE, url, settings.unleash_token, from_settings=True)
        sources.insert(0, configured)
    return sources


def get_cursor(client: Redis, *, name: str) -> int | None:
    """The highest producer event id pulled from `name`, None before its first pull."""
    with translate_errors():
        value = client.get(keys.source_cursor(name))
    return None if value is None else int(value)


def advance_cursor(client: Redis, *, name: str, to: int) -> bool:
    """Move the cursor of `name` up to `to` (never down); True if it moved.

    Never down: a slow puller must not rewind a faster one's progress.
    """
    return scripts.advance_cursor(client, name=name, to=to)


def record_pull(client: Redis, *, name: str, at_ms: int, error: str | None = None) -> None:
    """Keep how the pull of `name` at `at_ms` ended: well (`error` None) or with `error`."""
    key = keys.source_status(name)
    with translate_errors():
        pipe = client.pipeline(transaction=True)
        if error is None:
            pipe.hset(key, mapping={"lastPullAt": at_ms, "lastSuccessAt": at_ms})
            pipe.hdel(key, "lastError")
        else:
            text = error[:STATUS_ERROR_CHARS]
            pipe.hset(key, mapping={"lastPullAt": at_ms, "lastErrorAt": at_ms, "lastError": text})
        pipe.execute()


def pull_status(client: Redis, *, name: str) -> PullStatus:
    """How the last pulls of `name` went."""
    with translate_errors():
        stored: dict[str, str] = client.hgetall(keys.source_status(name))  # type: ignore[assignment]

    def moment(key: str) -> int | None:
        return int(stored[key]) if key in stored else None

    return PullStatus(
        last_pull_at=moment("lastPullAt"),
        last_success_at=moment("lastSuccessAt"),
        last_error_at=moment("lastErrorAt"),
        last_error=stored.get("lastError"),
    )


def _check_destination(url: str, *, settings: Settings) -> None:
    try:
        check_destination(url, settings=settings)
    except UnresolvableHostError as exc:
        raise InvalidRequestError(
            f"source URL {url!r} refused", [FieldProblem("url", exc.reason)]
        ) from exc
    except DestinationError as exc:
        reason = f"{exc.reason}; {GUARD_HINT}"
        raise InvalidRequestError(
            f"source URL {url!r} refused by the destination guard", [FieldProblem("url", reason)]
        ) from exc


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidRequestError(
            f"invalid source URL {url!r}",
            [FieldProblem("url", "must be an http(s) URL, e.g. https://unleash.example.com")],
        )


def _source(name: str, config: str) -> PullSource:
    data = json.loads(config)
    return PullSource(name=name, url=str(data["url"]), token=str(data["token"]))
