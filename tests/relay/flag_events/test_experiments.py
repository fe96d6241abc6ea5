"""Experiment iterations read from a flag's Unleash history."""

from __future__ import annotations

from typing import Any

import pytest

from relay.flag_events.experiments import iterations


def _created(at: int, flag_type: str) -> tuple[int, dict[str, Any]]:
    return at, {"id": at, "type": "feature-created", "data": {"name": "f", "type": flag_type}}


def _typed(at: int, kind: str, flag_type: str) -> tuple[int, dict[str, Any]]:
    return at, {"id": at, "type": kind, "data": {"type": flag_type}}


def _toggled(at: int, on: bool, environment: str = "production") -> tuple[int, dict[str, Any]]:
    kind = "feature-environment-enabled" if on else "feature-environment-disabled"
    return at, {"id": at, "type": kind, "environment": environment}


def _plain(at: int, kind: str, **fields: Any) -> tuple[int, dict[str, Any]]:
    return at, {"id": at, "type": kind, **fields}


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        # an experiment flag enabled, disabled, enabled again: one stopped, one running
        (
            [_created(1, "experiment"), _toggled(2, True), _toggled(3, False), _toggled(5, True)],
            [(2, 3, "stopped"), (5, None, "running")],
        ),
        # a release flag has no experiment however often it is enabled
        ([_created(1, "release"), _toggled(2, True), _toggled(3, False)], []),
        # the type changed to experiment while enabled: the iteration starts then
        (
            [
                _created(1, "release"),
                _toggled(2, True),
                _typed(4, "feature-type-updated", "experiment"),
            ],
            [(4, None, "running")],
        ),
        # metadata updates carry the type too; changing it away ends the iteration
        (
            [
                _created(1, "experiment"),
                _toggled(2, True),
                _typed(6, "feature-metadata-updated", "release"),
            ],
            [(2, 6, "stopped")],
        ),
        # archiving ends a running iteration
        (
            [_created(1, "experiment"), _toggled(2, True), _plain(7, "feature-archived")],
            [(2, 7, "stopped")],
        ),
        # another environment's toggles do not count
        ([_created(1, "experiment"), _toggled(2, True, "staging")], []),
        # a tag's type is not the flag's type
        (
            [_created(1, "experiment"), _typed(2, "feature-tagged", "simple"), _toggled(3, True)],
            [(3, None, "running")],
        ),
    ],
)
def test_iterations(
    history: list[tuple[int, dict[str, Any]]], expected: list[tuple[int, int | None, str]]
) -> None:
    """Each period of being an experiment and enabled in the environment is an iteration."""
    found = iterations(history, flag="f", environment="production")
    assert [(run.started_at, run.ended_at, run.status) for run in found] == expected


def test_iteration_ids_are_stable_and_distinct() -> None:
    """The same history gives the same ids; different iterations get different ones."""
    history = [_created(1, "experiment"), _toggled(2, True), _toggled(3, False), _toggled(4, True)]
    first = [run.id for run in iterations(history, flag="f", environment="production")]
    again = [run.id for run in iterations(history, flag="f", environment="production")]
    assert first == again
    assert len(set(first)) == 2
