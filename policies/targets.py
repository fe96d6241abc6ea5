"""What an Unleash event is about: its resource, its action names, its title verb."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from policies.catalog import (
    FLAG,
    PROJ,
    RELAY_EVENT_TYPES,
    RELAY_SOURCE,
    UNLEASH_EVENT_TYPES,
    EventType,
)
from policies.resources import Segment, Tag, format_resource, tag_names, tags_from_event

__all__ = ["EventTarget", "map_event", "resolve_resource"]

_UNKNOWN = "unknown/{type}"

_Part = tuple[str, tuple[str, ...], str | None]


@dataclass(frozen=True)
class EventTarget:
    """An event as policies see it.

    `resource` writes global keys as `*` (`proj/default:env/*:flag/checkout` for an
    environment-less flag event). `segments` and `shape` are derived from `resource`
    and `tags` when not given, so a target can be built from its strings alone.
    """

    kind: str
    resource: str
    actions: frozenset[str]
    ld_actions: tuple[str, ...]
    title_verb: str
    environment: str | None
    project: str | None
    event_type: str = ""
    tags: tuple[Tag, ...] = ()
    segments: tuple[Segment, ...] = ()
    shape: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.segments:
            object.__setattr__(self, "segments", _parse_resource(self.resource, self.tags))
        object.__setattr__(self, "shape", tuple(segment.type for segment in self.segments))


def map_event(event: Mapping[str, Any]) -> EventTarget:
    """Map an Unleash event (any field may be missing or None) to its target."""
    raw_type = event.get("type")
    name = raw_type if isinstance(raw_type, str) else ""
    row = UNLEASH_EVENT_TYPES.get(name) or _relay_type(event, name) or _fallback(event, name)
    tags = tags_from_event(event.get("tags"))
    segments = resolve_resource(row.resource, event, tags)
    return EventTarget(
        kind=row.kind,
        resource=format_resource(segments),
        actions=frozenset(row.ld_actions) | ({name} if name else frozenset()),
        ld_actions=row.ld_actions,
        title_verb=row.title_verb,
        environment=_text(event.get("environment")),
        project=_text(event.get("project")),
        event_type=name,
        tags=tags,
        segments=segments,
    )


def resolve_resource(
    template: str, event: Mapping[str, Any], tags: tuple[Tag, ...] = ()
) -> tuple[Segment, ...]:
    """Fill a catalog resource template from an event; its tags go on the last segment."""
    parts = _compile(template)
    last = len(parts) - 1
    names = tag_names(tags)
    return tuple(
        Segment(kind, _key(event, paths, literal), names if index == last else frozenset())
        for index, (kind, paths, literal) in enumerate(parts)
    )


def _relay_type(event: Mapping[str, Any], name: str) -> EventType | None:
    """relay's own event types, only from relay itself (a producer's look-alike is unknown)."""
    return RELAY_EVENT_TYPES.get(name) if event.get("source") == RELAY_SOURCE else None


def _fallback(event: Mapping[str, Any], name: str) -> EventType:
    """An unknown type: a resource from the fields present, its raw type as its action."""
    if _text(event.get("featureName")):
        return EventType(name, FLAG, (), "changed the flag")
    if _text(event.get("project")):
        return EventType(name, PROJ, (), "changed the project")
    return EventType(name, _UNKNOWN if name else "unknown/*", (), "recorded an event about")


@cache
def _compile(template: str) -> tuple[_Part, ...]:
    """Template segments as (type, field paths to try, literal key or None)."""
    parts: list[_Part] = []
    for segment in template.split(":"):
        kind, _, key = segment.partition("/")
        if key.startswith("{"):
            parts.append((kind, tuple(key[1:-1].split("|")), None))
        else:
            parts.append((kind, (), None if key in ("", "*") else key))
    return tuple(parts)


def _key(event: Mapping[str, Any], paths: tuple[str, ...], literal: str | None) -> str | None:
    for path in paths:
        value = _lookup(event, path)
        if value is not None:
            return value
    return literal


def _lookup(event: Mapping[str, Any], path: str) -> str | None:
    head, _, rest = path.partition(".")
    value = event.get(head)
    if rest:
        value = value.get(rest) if isinstance(value, Mapping) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse_resource(resource: str, tags: tuple[Tag, ...]) -> tuple[Segment, ...]:
    """Segments from a canonical resource string, `*` keys read as global."""
    return resolve_resource(resource, {}, tags) if resource else ()
