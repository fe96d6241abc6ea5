"""Pull sources: Unleash servers the relay polls for events its webhook may have missed.

A source's name is also the `source` of the events it yields: Unleash's webhook addon
posting to `/api/events?source=<name>` and the pull of `<name>` dedupe against each other.
The admin token is stored as given (the relay must present it to Unleash).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from relay.errors import FieldProblem, InvalidRequestError
from relay.settings import Settings
from relay.store import keys
from relay.store.client import Redis, translate_errors

SETTINGS_SOURCE: Final = "unleash"
# no ':' so that `relay:dedupe:{source}:{producerId}` stays unambiguous
SOURCE_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# moves the cursor forward only: a slow puller must not rewind a faster one's progress
_ADVANCE: Final = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
"""


@dataclass(frozen=True)
class PullSource:
    """An Unleash server to poll: its base URL and an admin token."""

    name: str
    url: str
    token: str


def check_source_name(name: str, *, attribute: str = "source") -> None:
    """InvalidRequestError unless `name` is 1-100 letters, digits, `.`, `_` or `-`."""
    if not SOURCE_NAME.match(name):
        raise InvalidRequestError(
            f"invalid source name {name!r}",
            [FieldProblem(attribute, "use 1 to 100 letters, digits, '.', '_' or '-'")],
        )


def add_source(client: Redis, *, name: str, url: str, token: str) -> None:
    """Add a pull source, or replace the one of that name (its cursor resets if the URL changes)."""
    check_source_name(name, attribute="name")
    _check_url(url)
    if not token.strip():
        raise InvalidRequestError("token is empty", [FieldProblem("token", "must not be empty")])
    config = json.dumps({"url": url.rstrip("/"), "token": token})
    with translate_errors():
        previous = client.hget(keys.SOURCES, name)
        pipe = client.pipeline(transaction=True)
        pipe.hset(keys.SOURCES, name, config)
        if previous is not None and json.loads(previous)["url"] != url.rstrip("/"):
            pipe.delete(keys.source_cursor(name))
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
        pipe.delete(keys.source_cursor(name))
        removed, _ = pipe.execute()
    return bool(removed)


def sources_to_pull(client: Redis, *, settings: Settings) -> list[PullSource]:
    """Stored sources plus `unleash` from RELAY_UNLEASH_URL/TOKEN (a stored `unleash` wins)."""
    sources = list_sources(client)
    stored = {source.name for source in sources}
    if settings.unleash_url and settings.unleash_token and SETTINGS_SOURCE not in stored:
        url = settings.unleash_url.rstrip("/")
        sources.insert(0, PullSource(SETTINGS_SOURCE, url, settings.unleash_token))
    return sources


def get_cursor(client: Redis, *, name: str) -> int | None:
    """The highest producer event id pulled from `name`, None before its first pull."""
    with translate_errors():
        value = client.get(keys.source_cursor(name))
    return None if value is None else int(value)


def advance_cursor(client: Redis, *, name: str, to: int) -> bool:
    """Move the cursor of `name` up to `to` (never down); True if it moved."""
    with translate_errors():
        script = client.register_script(_ADVANCE)
        return bool(script(keys=[keys.source_cursor(name)], args=[to]))


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
