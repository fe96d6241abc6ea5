"""A per-process memo of what the flag-events API learns about experiments, re-checked on use.

Two facts are costly to read and rarely change:

- which flags of a project were ever typed `experiment`: every global event of the
  project is scanned for the word. Kept as a superset, grown incrementally: only events
  recorded since the last look are scanned (relay ids only grow). An event removed
  since can only leave an extra flag here, which costs a check, never a wrong answer.
- a flag's iterations in an environment: its whole history is loaded. Kept with a
  fingerprint of the flag's event set (feature index size, newest relay id), which
  changes whenever an event of the flag is recorded or removed.

One cache per application (its Redis never changes underneath it); if the event
sequence goes backwards (a flushed test database), everything is forgotten.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from relay.flag_events.experiments import EXPERIMENT_TYPE, Iteration
from relay.store import keys
from relay.store.client import Redis, translate_errors
from relay.store.events import get_events
from relay.store.flag_events import documents_mentioning, documents_with

__all__ = ["ExperimentCache"]

Fingerprint = tuple[int, str]
RunsKey = tuple[str, str, str]  # project, environment, flag


class ExperimentCache:
    """Experiment facts per project and flag, valid while Redis says nothing changed."""

    def __init__(self, *, max_flags: int = 50_000) -> None:
        self._lock = threading.Lock()
        self._max_flags = max_flags
        # per project: relay ids up to which its global events were scanned, and the flags
        self._maybe: dict[str, tuple[int, set[str]]] = {}
        self._runs: OrderedDict[RunsKey, tuple[Fingerprint, list[Iteration]]] = OrderedDict()

    def maybe_experiments(self, client: Redis, *, project: str) -> set[str]:
        """The project's flags with a global event mentioning `experiment` (a superset)."""
        newest = _sequence(client)
        with self._lock:
            known = self._maybe.get(project)
            if known is not None and newest < known[0]:  # the database was emptied
                self._maybe.clear()
                self._runs.clear()
                known = None
        if known is None:
            found = _flags_of(client, _mentioning(client, project=project, ids=None))
        elif newest > known[0]:
            fresh = _recorded_between(client, known[0], newest)
            found = known[1] | _flags_of(client, _mentioning(client, project=project, ids=fresh))
        else:
            return known[1]
        with self._lock:
            self._maybe[project] = (newest, found)
        return found

    def iterations(
        self,
        client: Redis,
        *,
        project: str,
        environment: str,
        flags: Sequence[str],
        load: Callable[[Sequence[str]], dict[str, list[Iteration]]],
    ) -> dict[str, list[Iteration]]:
        """Each flag's iterations: remembered ones whose fingerprint holds, `load` the rest."""
        prints = _fingerprints(client, flags)
        found: dict[str, list[Iteration]] = {}
        with self._lock:
            for flag in flags:
                cached = self._runs.get((project, environment, flag))
                if cached is not None and cached[0] == prints[flag]:
                    self._runs.move_to_end((project, environment, flag))
                    found[flag] = cached[1]
        missing = [flag for flag in flags if flag not in found]
        loaded = load(missing) if missing else {}
        with self._lock:
            for flag, runs in loaded.items():
                self._runs[(project, environment, flag)] = (prints[flag], runs)
            while len(self._runs) > self._max_flags:
                self._runs.popitem(last=False)
        return found | loaded


def _sequence(client: Redis) -> int:
    with translate_errors():
        return int(client.get(keys.EVENT_SEQ) or 0)


def _recorded_between(client: Redis, since: int, newest: int) -> list[str]:
    """Ids recorded after `since` up to `newest` (the all-events index is scored by id)."""
    with translate_errors():
        found: list[str] = client.zrangebyscore(keys.EVENTS_ALL, f"({since}", newest)  # type: ignore[assignment]
    return found


def _mentioning(client: Redis, *, project: str, ids: list[str] | None) -> list[int]:
    """Global events of the project (all, or those among `ids`) mentioning `experiment`."""
    index = keys.global_flag_events(project)
    if ids is None:
        return documents_mentioning(client, index=index, needle=EXPERIMENT_TYPE)
    if not ids:
        return []
    with translate_errors():
        scores = client.zmscore(index, ids)
    global_ids = [member for member, score in zip(ids, scores, strict=True) if score is not None]
    return documents_with(client, ids=global_ids, needle=EXPERIMENT_TYPE)


def _flags_of(client: Redis, ids: list[int]) -> set[str]:
    events = get_events(client, ids=ids)
    return {str(e["featureName"]) for e in events if e is not None and e.get("featureName")}


def _fingerprints(client: Redis, flags: Sequence[str]) -> dict[str, Fingerprint]:
    """Per flag: how many events it has and its newest relay id (changes with any event)."""
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for flag in flags:
            pipe.zcard(keys.events_by_feature(flag))
            pipe.zrange(keys.events_by_feature(flag), -1, -1)
        answers = pipe.execute()
    return {
        flag: (int(answers[2 * i]), "".join(answers[2 * i + 1])) for i, flag in enumerate(flags)
    }
