"""Experiments read from a flag's history: Unleash has no experiment object, its flags have types.

A flag whose Unleash type is `experiment` has an experiment (its key is the flag key).
Each period during which the flag is of that type AND enabled in an environment is one
iteration there: it starts at the event that made both true (a feature-environment-enabled,
or a type change to `experiment` while enabled) and ends at the event that made either
false (disabled, type changed away, archived or deleted). An iteration still open is
`running`, a closed one `stopped`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["EXPERIMENT_TYPE", "Iteration", "iterations"]

EXPERIMENT_TYPE = "experiment"

# events whose `data.type` is the flag's Unleash type (feature-tagged's is a tag type)
_TYPE_BEARING = frozenset(
    {
        "feature-created",
        "feature-import",
        "feature-type-updated",
        "feature-metadata-updated",
        "feature-updated",
    }
)
_ENDS_EVERYWHERE = frozenset({"feature-archived", "feature-deleted"})
_NAMESPACE = uuid.UUID("6b1f0e1c-3d0a-5c4e-9a53-7e0b7a1f2c11")


@dataclass(frozen=True)
class Iteration:
    """One period an experiment ran in an environment."""

    id: str
    flag: str
    environment: str
    started_at: int
    ended_at: int | None

    @property
    def status(self) -> Literal["running", "stopped"]:
        return "running" if self.ended_at is None else "stopped"


@dataclass
class _State:
    flag_type: str | None = None
    enabled: bool = False
    started: tuple[int, str] | None = None  # (ms, relay id) of the open iteration


def iterations(
    history: Iterable[tuple[int, Mapping[str, Any]]], *, flag: str, environment: str
) -> list[Iteration]:
    """The flag's iterations in `environment`, oldest first.

    `history` is the flag's events (global ones and those of `environment`) as
    (createdAt ms, event) in time order.
    """
    state = _State()
    found: list[Iteration] = []
    for at, event in history:
        _apply(state, event, environment)
        running = state.flag_type == EXPERIMENT_TYPE and state.enabled
        if running and state.started is None:
            state.started = (at, str(event.get("id", "")))
        elif not running and state.started is not None:
            found.append(_iteration(flag, environment, state.started, at))
            state.started = None
    if state.started is not None:
        found.append(_iteration(flag, environment, state.started, None))
    return found


def _apply(state: _State, event: Mapping[str, Any], environment: str) -> None:
    kind = event.get("type")
    data = event.get("data")
    if kind in _TYPE_BEARING and isinstance(data, Mapping):
        flag_type = data.get("type")
        if isinstance(flag_type, str) and flag_type:
            state.flag_type = flag_type
    elif kind in _ENDS_EVERYWHERE:
        state.enabled = False
    elif event.get("environment") == environment:
        if kind == "feature-environment-enabled":
            state.enabled = True
        elif kind == "feature-environment-disabled":
            state.enabled = False


def _iteration(
    flag: str, environment: str, started: tuple[int, str], ended: int | None
) -> Iteration:
    at, event_id = started
    key = uuid.uuid5(_NAMESPACE, f"{flag}\x1f{environment}\x1f{event_id}")
    return Iteration(str(key), flag, environment, at, ended)
