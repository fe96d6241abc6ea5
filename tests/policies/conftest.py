"""Fixtures for the policies tests: targets built from resource strings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from policies import EventTarget, Tag

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "shared" / "fixtures" / "unleash"
DEFAULT_NAMES = ("updateOn", "feature-environment-enabled")

MakeTarget = Callable[..., EventTarget]


def build_target(
    resource: str, tags: str = "", names: Iterable[str] = DEFAULT_NAMES
) -> EventTarget:
    """A target for `resource` (`*` keys are global) with `type:value` tags, comma-separated."""
    parsed = tuple(_tag(text) for text in tags.split(",") if text)
    kind = resource.rsplit(":", 1)[-1].split("/", 1)[0]
    return EventTarget(
        kind=kind,
        resource=resource,
        actions=frozenset(names),
        ld_actions=(),
        title_verb="",
        environment=None,
        project=None,
        tags=parsed,
    )


def _tag(text: str) -> Tag:
    kind, _, value = text.rpartition(":")
    return Tag(type=kind, value=value)


@pytest.fixture(scope="session")
def make_target() -> MakeTarget:
    """Build an `EventTarget` from a resource string, tags and action names."""
    return build_target
