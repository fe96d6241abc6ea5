"""What one flag-events request learns about flags and events, each fact read once.

Filters need per-flag facts (which apps evaluated it, its experiment iterations) and
per-event ones (the event itself, its impact). A request asks for them in batches and
this keeps them, so a flag seen on every page of a walk is looked up once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from relay.flag_events.experiment_cache import ExperimentCache
from relay.flag_events.experiments import Iteration, iterations
from relay.flag_events.impact import Impact, ImpactSize, measure_impact, no_evaluations
from relay.store import evaluations
from relay.store import flag_events as index
from relay.store.client import Redis
from relay.store.evaluation_windows import evaluation_windows, minutes_with_counts, nonzero_span
from relay.store.flag_events import Position


@dataclass(frozen=True)
class Filters:
    """The per-event filters of a request (None = not filtered on it)."""

    project: str
    environment: str
    flag: str | None = None
    apps: frozenset[str] | None = None
    impact_size: ImpactSize | None = None
    has_experiments: bool | None = None

    @property
    def any(self) -> bool:
        return any(
            value is not None
            for value in (self.flag, self.apps, self.impact_size, self.has_experiments)
        )


Candidate = tuple[Position, str]  # an event's position and its flag


@dataclass
class Facts:
    """Per-request caches over the store."""

    client: Redis
    filters: Filters
    window: tuple[int, int]  # start and stop ms: every event asked about lies within
    cache: ExperimentCache = field(default_factory=ExperimentCache)
    _minutes: dict[str, list[int]] = field(default_factory=dict)
    _apps: dict[str, set[str]] = field(default_factory=dict)
    _iterations: dict[str, list[Iteration]] = field(default_factory=dict)
    _impacts: dict[Position, Impact] = field(default_factory=dict)
    _events: dict[Position, dict[str, Any] | None] = field(default_factory=dict)
    _evaluated: set[str] | None = None
    _maybe_experiments: set[str] | None = None

    def events(self, positions: Sequence[Position]) -> list[dict[str, Any] | None]:
        """The recorded events at these positions (None where gone)."""
        missing = [p for p in positions if p not in self._events]
        if missing:
            loaded = index.load_events(self.client, positions=missing)
            self._events.update(zip(missing, loaded, strict=True))
        return [self._events[p] for p in positions]

    def iterations(self, flags: Sequence[str]) -> list[list[Iteration]]:
        """Each flag's experiment iterations in the requested environment."""
        self._load_iterations(flags)
        return [self._iterations[flag] for flag in flags]

    def impacts(self, candidates: Sequence[Candidate]) -> list[Impact]:
        """Each event's impact in the requested environment (for the requested apps)."""
        todo = [c for c in candidates if c[0] not in self._impacts]
        self._load_apps([flag for _, flag in todo])
        measured = [c for c in todo if self._evaluating_apps(c[1])]
        for position, _ in todo:
            self._impacts[position] = no_evaluations()
        windows = evaluation_windows(
            self.client,
            environment=self.filters.environment,
            requests=[(flag, position.time_ms) for position, flag in measured],
            apps=self.filters.apps,
            minutes=self.minutes([flag for _, flag in measured]),
        )
        for (position, _), (before, after) in zip(measured, windows, strict=True):
            if before or after:
                self._impacts[position] = measure_impact(before, after)
        return [self._impacts[position] for position, _ in candidates]

    def matching(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates every filter keeps, in the order given."""
        wanted = self.filters
        kept = [c for c in candidates if wanted.flag is None or c[1] == wanted.flag]
        if wanted.apps is not None:
            self._load_apps([flag for _, flag in kept])
            kept = [c for c in kept if self._evaluating_apps(c[1])]
        if wanted.has_experiments is not None:
            self._load_iterations([flag for _, flag in kept])
            kept = [c for c in kept if bool(self._iterations[c[1]]) == wanted.has_experiments]
        if wanted.impact_size is not None:
            sizes = [impact.size for impact in self.impacts(kept)]
            kept = [c for c, size in zip(kept, sizes, strict=True) if size == wanted.impact_size]
        return kept

    def minutes(self, flags: Sequence[str]) -> dict[str, list[int]]:
        """Per flag, its minutes with counts around the window (read once per request)."""
        missing = sorted({flag for flag in flags if flag not in self._minutes})
        if missing:
            start, stop = self.window
            self._minutes.update(
                minutes_with_counts(
                    self.client,
                    environment=self.filters.environment,
                    flags=missing,
                    start_ms=start,
                    stop_ms=stop,
                )
            )
        return {flag: self._minutes[flag] for flag in flags}

    def nonzero_impact_span(self, flags: Sequence[str]) -> tuple[int, int] | None:
        """Where in the window an event of these flags can have a nonzero impact, if anywhere."""
        start, stop = self.window
        return nonzero_span(self.minutes(flags).values(), start_ms=start, stop_ms=stop)

    def evaluated_flags(self) -> set[str]:
        """The flags evaluated in the environment (by the requested apps, when given)."""
        if self._evaluated is None:
            apps = None if self.filters.apps is None else sorted(self.filters.apps)
            self._evaluated = evaluations.evaluated_flags(
                self.client, environment=self.filters.environment, apps=apps
            )
        return self._evaluated

    def experiment_flags(self) -> set[str]:
        """The project's flags with at least one experiment iteration in the environment."""
        maybe = sorted(self._maybe())
        self._load_iterations(maybe)
        return {flag for flag in maybe if self._iterations[flag]}

    def _evaluating_apps(self, flag: str) -> set[str]:
        apps = self._apps[flag]
        return apps if self.filters.apps is None else apps & self.filters.apps

    def _load_apps(self, flags: Sequence[str]) -> None:
        missing = sorted({flag for flag in flags if flag not in self._apps})
        if missing:
            self._apps.update(
                evaluations.apps_by_flag(
                    self.client, environment=self.filters.environment, flags=missing
                )
            )

    def _maybe(self) -> set[str]:
        """A superset of the project's experiment flags (see relay.flag_events.experiment_cache)."""
        if self._maybe_experiments is None:
            self._maybe_experiments = self.cache.maybe_experiments(
                self.client, project=self.filters.project
            )
        return self._maybe_experiments

    def _load_iterations(self, flags: Sequence[str]) -> None:
        missing = sorted({flag for flag in flags if flag not in self._iterations})
        if not missing:
            return
        maybe = self._maybe()
        self._iterations.update({flag: [] for flag in missing if flag not in maybe})
        wanted = [flag for flag in missing if flag in maybe]
        if wanted:
            self._iterations.update(
                self.cache.iterations(
                    self.client,
                    project=self.filters.project,
                    environment=self.filters.environment,
                    flags=wanted,
                    load=self._read_iterations,
                )
            )

    def _read_iterations(self, flags: Sequence[str]) -> dict[str, list[Iteration]]:
        # the flag's type lives in global events: read them even when the request excludes them
        both = index.index_keys(
            project=self.filters.project, environment=self.filters.environment, include_global=True
        )
        return {
            flag: iterations(history, flag=flag, environment=self.filters.environment)
            for flag, history in index.flag_histories(self.client, index=both, flags=flags).items()
        }
