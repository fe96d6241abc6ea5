"""What one API process keeps alive, made when the app starts and closed when it stops.

`ApiRuntime` is built by the app's lifespan (relay/api/app.py) in each API process (uvicorn's
workers are separate processes, each with its own lifespan), kept as `app.state.runtime`,
and closed in the reverse order of building: the ingest writer records what waits, the
fan-out notifier publishes what it holds, then the broker and Redis connections close.
Routes and middleware reach it through `runtime_of` (or the dependencies in deps.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relay import tasks
from relay.api.auth_failures import AuthFailures
from relay.api.off_loop import OffLoop
from relay.api.token_cache import TokenCache
from relay.flag_events.experiment_cache import ExperimentCache
from relay.ingest.fanout_notifier import FanoutSender
from relay.ingest.writer import IngestWriter, dedupe_ttl_ms
from relay.integrations.catalog import load_catalog
from relay.settings import Settings
from relay.store.client import Redis, open_redis
from relay.subscriptions.explain import ParsedPolicies


class ApiRuntime:
    """The long-lived objects of one API process."""

    def __init__(self, settings: Settings, *, redis: Redis | None = None) -> None:
        # in the order they depend on each other; `close` undoes it backwards
        self.settings = settings
        self.catalog = load_catalog(settings)  # first: a bad manifest stops the start
        self._owns_redis = redis is None  # a client handed in (tests) stays its owner's
        self.redis: Redis = redis if redis is not None else open_redis(settings)
        self.off_loop = OffLoop()
        self.producer = tasks.Producer(settings)
        self.fanout = FanoutSender(settings, publish=self._publish_fanout)
        self.ingest_writer = IngestWriter(self.redis, dedupe_ttl_ms=dedupe_ttl_ms(settings))
        self.token_cache = TokenCache()
        self.auth_failures = AuthFailures(settings)
        self.experiment_cache = ExperimentCache()
        # stored policies parsed for explanations (routes/explain.py), bounded by entries
        self.parsed_policies = ParsedPolicies(max_entries=settings.max_total_policy_entries)
        self.test_waiters = 0  # test sends waiting on the loop (routes/deliveries.py)

    def close(self) -> None:
        """Record and publish what waits, then close every connection."""
        self.ingest_writer.close()
        self.fanout.close()
        self.producer.close()
        self.off_loop.close()
        if self._owns_redis:
            self.redis.close()

    def _publish_fanout(self, _: Settings, event_ids: Sequence[int]) -> None:
        self.producer.fanout(event_ids)


def runtime_of(app: Any) -> ApiRuntime:
    """The runtime of a started app (`app.state.runtime`)."""
    runtime: ApiRuntime | None = getattr(app.state, "runtime", None)
    if runtime is None:
        raise RuntimeError(
            "the API is not started: its runtime is made by the app's lifespan "
            "(serve it with uvicorn, or enter `with TestClient(app)`)"
        )
    return runtime
