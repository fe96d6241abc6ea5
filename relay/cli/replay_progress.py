"""`relay replay`: follow a replay's deliveries to their outcomes with a progress bar.

The replay itself is relay/deliveries/replay.py's (the same the API runs); this only watches the
deliveries it created, reading their states from Redis until each has settled.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Final

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from relay.store import queues
from relay.store.client import Redis

SETTLED: Final = frozenset({"delivered", "dead", "gone", "skipped"})
MISSING: Final = "missing"  # the record is gone (expired, or the subscription was deleted)


def follow(
    client: Redis,
    ids: Sequence[str],
    *,
    console: Console,
    timeout: float | None = None,
    poll: float = 0.5,
) -> Counter[str]:
    """Show progress until every delivery settled (or `timeout`); the final states, counted.

    Deliveries still retrying when the watch ends are counted by their current state
    (`pending` or `failed`); the workers go on with them regardless.
    """
    remaining = list(ids)
    settled: Counter[str] = Counter()
    deadline = None if timeout is None else time.monotonic() + timeout
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(_describe(settled), total=len(ids))
        while True:
            states = queues.delivery_states(client, ids=remaining)
            remaining = []
            for delivery_id, state in states.items():
                if state is None or state in SETTLED:
                    settled[state or MISSING] += 1
                else:
                    remaining.append(delivery_id)
            progress.update(
                task, completed=len(ids) - len(remaining), description=_describe(settled)
            )
            if not remaining or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(poll)
    waiting = queues.delivery_states(client, ids=remaining)
    settled.update(state or MISSING for state in waiting.values())
    return settled


def _describe(counts: Counter[str]) -> str:
    failed = sum(n for state, n in counts.items() if state != "delivered")
    return f"delivered {counts['delivered']}, failed {failed}"
