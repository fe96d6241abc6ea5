"""Prometheus metrics: their definitions, what records them, and the `/metrics` exposition.

Counters and histograms are recorded where things happen (the API ingests, workers fan
out and deliver) and live in one module-level registry, so re-importing or building
many apps never registers a metric twice. Queue depths are not recorded by anyone: a
collector reads them from Redis at scrape time, so they are global and never stale.

Several processes on one machine (`relay up`, `relay serve --workers N`, an API next to a
worker) share their figures through prometheus-client's multiprocess mode: each process
writes its values to files in `PROMETHEUS_MULTIPROC_DIR`, and a scrape of any API process
merges the files. The mode is chosen when prometheus-client is first imported, so the
variable must be in the environment when the process starts.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from policies import UNLEASH_EVENT_TYPES
from relay.clock import now_ms
from relay.errors import StoreError
from relay.store import heartbeats, queues, subscription_status
from relay.store.client import Redis
from relay.store.events import Recorded
from relay.store.subscription_status import Flow

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
OTHER: Final = "other"
MAX_SOURCES: Final = 200  # distinct `source` label values per process; the rest are "other"

# `*_created` series double the output and only help with counter resets Prometheus
# already detects; multiprocess mode never has them
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY: Final = CollectorRegistry(auto_describe=True)

# seconds; the fan-out is normally milliseconds, a lost task is healed after ~5-15 s
_FANOUT_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# seconds; a first attempt takes the receiver's time, retries add the schedule's delays
_LATENCY_BUCKETS: Final = (
    *(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    *(300, 1800, 3600, 7200, 21600, 86400),
)
_REQUEST_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)

EVENTS_INGESTED: Final = Counter(
    "relay_events_ingested",
    "Events recorded (re-sent duplicates are not), by source and Unleash event type",
    ["source", "type"],
    registry=REGISTRY,
)
FANOUT_LAG: Final = Histogram(
    "relay_fanout_lag_seconds",
    "Time from an event entering the fan-out outbox to its deliveries being created",
    buckets=_FANOUT_BUCKETS,
    registry=REGISTRY,
)
DELIVERIES: Final = Counter(
    "relay_deliveries",
    "Deliveries that reached an outcome: delivered, retry (an attempt failed, another is "
    "scheduled), dead, gone (410), skipped (subscription off or deleted); by kind",
    ["outcome", "kind"],
    registry=REGISTRY,
)
OPERATIONAL_EVENTS: Final = Counter(
    "relay_operational_events",
    "relay's own events about subscriptions and deliveries it recorded, by type",
    ["type"],
    registry=REGISTRY,
)
PAUSES: Final = Counter(
    "relay_subscription_pauses",
    "Subscriptions paused (or a pause extended) by a receiver's 429 or 503 with Retry-After",
    registry=REGISTRY,  # without it, a single process's scrape would not show it
)
UNREPLICATED_WRITES: Final = Counter(
    "relay_unreplicated_writes",
    "Writes the primary holds that fewer replicas than RELAY_REDIS_MIN_REPLICAS confirmed in "
    "time: ingest and subscription changes answered 503, delivery outcomes (a failover could "
    "re-send them); by write",
    ["write"],
    registry=REGISTRY,
)
ATTEMPTS: Final = Counter(
    "relay_delivery_attempts",
    "POSTs to receivers, by the answer's status class (2xx, 4xx, 5xx, or error: no answer)",
    ["status"],
    registry=REGISTRY,
)
DELIVERY_LATENCY: Final = Histogram(
    "relay_delivery_latency_seconds",
    "Event deliveries: from the event's createdAt (the ingest time unless the producer set "
    "it) to the receiver's successful answer",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
REQUEST_DURATION: Final = Histogram(
    "relay_http_request_duration_seconds",
    "API requests, by method, route template and status code",
    ["method", "route", "status"],
    buckets=_REQUEST_BUCKETS,
    registry=REGISTRY,
)

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_warned_mode = False


# --- recording ---------------------------------------------------------------------------


def count_recorded(source: str, events: Sequence[Mapping[str, Any]], recorded: Recorded) -> None:
    """Count the events of a batch that were recorded now (not the re-sent ones)."""
    if not recorded.new_ids:
        return
    new = set(recorded.new_ids)
    types: Tally[str] = Tally()
    for event, event_id in zip(events, recorded.ids, strict=True):
        if event_id in new:
            new.discard(event_id)  # an id twice in a batch (a re-send within it) counts once
            types[event_type_label(event.get("type"))] += 1
    label = source_label(source)
    for name, count in types.items():
        _ingested_child(label, name).inc(count)


# the children, looked up once: `labels()` takes a lock and builds a key on every call,
# a visible cost per request (the label sets are bounded, so are these caches)
@lru_cache(maxsize=4096)
def _ingested_child(source: str, type_: str) -> Counter:
    return EVENTS_INGESTED.labels(source=source, type=type_)


@lru_cache(maxsize=4096)
def _request_child(method: str, route: str, status: int) -> Histogram:
    return REQUEST_DURATION.labels(method=method, route=route, status=str(status))


def observe_fanout_lag(enqueued_ms: Iterable[int], *, now_ms: int) -> None:
    """Observe, for each event fanned out, how long it waited in the outbox."""
    for at in enqueued_ms:
        FANOUT_LAG.observe(max(0, now_ms - at) / 1000)


def count_delivery(outcome: str, *, kind: str) -> None:
    DELIVERIES.labels(outcome=outcome, kind=kind).inc()


def count_attempt(status_code: int | None) -> None:
    ATTEMPTS.labels(status=status_class(status_code)).inc()


def observe_delivery_latency(seconds: float) -> None:
    DELIVERY_LATENCY.observe(max(0.0, seconds))


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in _METHODS else OTHER
    _request_child(method, route, status).observe(seconds)


def event_type_label(value: object) -> str:
    """The type itself when Unleash defines it, else "other" (keeps the label set bounded)."""
    return value if isinstance(value, str) and value in UNLEASH_EVENT_TYPES else OTHER


class BoundedLabel:
    """Label values as given until `limit` distinct ones were seen, then "other"."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return OTHER


# sources are named by operators (or default to a token id): few, but nothing enforces it
source_label: Final = BoundedLabel(MAX_SOURCES)


def status_class(status_code: int | None) -> str:
    return "error" if status_code is None else f"{status_code // 100}xx"


# --- exposition --------------------------------------------------------------------------


def render(client: Redis, *, worker_ttl: float) -> bytes:
    """The Prometheus text of this machine's processes plus the queue gauges from Redis."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory is not None:
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Local())
    registry.register(RedisCollector(client, worker_ttl=worker_ttl))
    return generate_latest(registry)


def multiprocess_dir() -> str | None:
    """The directory of this machine's metric files, when this process writes there."""
    global _warned_mode
    directory = os.environ.get(MULTIPROCESS_ENV)
    # prometheus_client picks its value class at import: MutexValue keeps values in memory
    writes_files = values.ValueClass is not values.MutexValue
    if writes_files and directory and os.path.isdir(directory):
        return directory
    if directory and not _warned_mode:
        _warned_mode = True
        log.warning(
            "%s is set but this process keeps its metrics in memory (the variable must be set "
            "before the process starts, and name an existing directory): serving this "
            "process's metrics only",
            MULTIPROCESS_ENV,
        )
    return None


class _Local(Collector):
    """This process's own registry (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class RedisCollector(Collector):
    """Gauges read from Redis at scrape time: queue depths, dead letters, workers alive,
    and per subscription its open circuit, pause, throttling and held-back deliveries."""

    def __init__(self, client: Redis, *, worker_ttl: float) -> None:
        self.client = client
        self.worker_ttl = worker_ttl

    def collect(self) -> Iterator[Metric]:
        try:
            depths = queues.queue_depths(self.client)
            workers = heartbeats.workers_seen(self.client, within_seconds=self.worker_ttl)
            circuits = queues.open_circuits(self.client)
            flows = subscription_status.flows_of_all(self.client, now_ms=now_ms())
        except StoreError as exc:
            log.warning("metrics: cannot read Redis: %s", exc)
            yield _gauge("relay_redis_up", "1 when Redis answered this scrape", 0)
            return
        yield _gauge("relay_redis_up", "1 when Redis answered this scrape", 1)
        yield _gauge("relay_outbox_depth", "Recorded events waiting for fan-out", depths.outbox)
        yield _gauge(
            "relay_due_depth",
            "Deliveries still to deliver (pending, failed, or being attempted)",
            depths.due,
        )
        yield _gauge(
            "relay_due_ready", "Deliveries whose attempt time has come (backlog)", depths.ready
        )
        yield _gauge("relay_claims", "Deliveries a worker holds a lease on", depths.claims)
        yield _gauge(
            "relay_dead_deliveries", "Dead letters kept for the retention period", depths.dead
        )
        yield _gauge("relay_workers", "Workers with a recent heartbeat", len(workers))
        yield _gauge(
            "relay_waiting_deliveries",
            "Deliveries due while their subscription had every send slot taken or its circuit"
            " open: they wait, no attempt counted",
            depths.waiting,
        )
        open_circuit = GaugeMetricFamily(
            "relay_circuit_open",
            "1 for each subscription whose circuit is open: after consecutive timeouts or"
            " connection failures nothing is sent to it but a probe now and then",
            labels=["subscription"],
        )
        for sub_id in circuits:
            open_circuit.add_metric([sub_id], 1)
        yield open_circuit
        yield from _flow_gauges(flows)


def _flow_gauges(flows: Mapping[str, Flow]) -> Iterator[GaugeMetricFamily]:
    """Per subscription, each only where it is not 0 (as relay_circuit_open): the output
    grows with the subscriptions held back, not with all of them."""
    paused = _per_subscription(
        "relay_subscription_paused",
        "1 for each subscription paused by its receiver's 429 or 503 with Retry-After: its"
        " deliveries wait, no attempt counted",
    )
    throttled = _per_subscription(
        "relay_subscription_throttled",
        "1 for each subscription at its maxPerSecond: its token bucket had no token left at"
        " its last claim, within the last 2 s",
    )
    held = _per_subscription(
        "relay_held_back_deliveries",
        "Deliveries of an ordered subscription waiting behind the head of their ordering key"
        " (200 keys read per subscription at most: past that, a lower bound)",
    )
    for sub_id, flow in flows.items():
        if flow.paused_until is not None:
            paused.add_metric([sub_id], 1)
        if flow.throttled:
            throttled.add_metric([sub_id], 1)
        if flow.held_deliveries:
            held.add_metric([sub_id], flow.held_deliveries)
    yield from (paused, throttled, held)


def _per_subscription(name: str, text: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, labels=["subscription"])


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)
