"""Resources as events present them: typed segments, some global, some tagged.

A resource is a tuple of `Segment`s, e.g. `proj/default:env/production:flag/checkout`.
A segment whose key the event does not know (a flag event without an environment,
a bulk `drop-*` event) is *global*: its key is `None`, it renders as `*`, and it
matches every specifier for that segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LAUNCHDARKLY_RESOURCE_TYPES",
    "RELAY_RESOURCE_TYPES",
    "RESOURCE_TYPES",
    "Segment",
    "Tag",
    "format_resource",
    "tag_names",
    "tags_from_event",
]

# The resource types of LaunchDarkly's custom-role policies that specifiers may name.
LAUNCHDARKLY_RESOURCE_TYPES = frozenset(
    {
        "acct",
        "application",
        "code-reference-repository",
        "context-kind",
        "env",
        "experiment",
        "flag",
        "integration",
        "member",
        "metric",
        "proj",
        "relay-proxy-config",
        "release-pipeline",
        "role",
        "segment",
        "service-token",
        "team",
        "token",
        "webhook",
    }
)

# The relay's own types, for Unleash subjects that LaunchDarkly has no resource for.
RELAY_RESOURCE_TYPES = frozenset(
    {
        "action-set",
        "banner",
        "change-request",
        "context-field",
        "public-signup-token",
        "service-account",
        "setting",
        "signal-endpoint",
        "strategy",
        "tag",
        "tag-type",
        "unknown",
    }
)

RESOURCE_TYPES = LAUNCHDARKLY_RESOURCE_TYPES | RELAY_RESOURCE_TYPES


@dataclass(frozen=True)
class Tag:
    """An Unleash tag: `{type, value}`."""

    type: str
    value: str


@dataclass(frozen=True)
class Segment:
    """One `type/key` part of an event's resource; `key=None` means global."""

    type: str
    key: str | None
    tags: frozenset[str] = frozenset()

    def __str__(self) -> str:
        return self.type if self.type == "acct" else f"{self.type}/{self.key or '*'}"


def format_resource(segments: Iterable[Segment]) -> str:
    """The canonical resource string, global keys written as `*`."""
    return ":".join(str(segment) for segment in segments)


def tag_names(tags: Iterable[Tag]) -> frozenset[str]:
    """Lower-cased names a tag item may match: each tag's `value` and `type:value`."""
    names: set[str] = set()
    for tag in tags:
        names.add(tag.value.lower())
        if tag.type:
            names.add(f"{tag.type}:{tag.value}".lower())
    return frozenset(names)


def tags_from_event(raw: Any) -> tuple[Tag, ...]:
    """The well-formed tags of an event's `tags` field; anything else is ignored."""
    if not isinstance(raw, list):
        return ()
    return tuple(_tag(item) for item in raw if _is_tag(item))


def _is_tag(item: Any) -> bool:
    return isinstance(item, Mapping) and isinstance(item.get("value"), str) and item["value"] != ""


def _tag(item: Mapping[str, Any]) -> Tag:
    kind = item.get("type")
    return Tag(type=kind if isinstance(kind, str) else "", value=item["value"])
