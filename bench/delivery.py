"""Delivery benchmark: events in over HTTP, signed webhooks out to slow receivers.

One API process (uvicorn) and one relay worker process (the `relay worker` command line,
`workers.celery_app.worker_args`) on an embedded Redis; five subscriptions point at an
asyncio receiver that answers after 100 ms. Measured in the same run:

  relay       events POSTed in batches; deliveries/s until the last one arrived
  templated   the same with 5 `slack` subscriptions (Block Kit bodies rendered from the
              built-in manifest) instead of the 5 webhooks, alternating with them run by
              run (PATCH `/on`), so each templated / webhook ratio is of one machine state
  ordered     the same with 5 webhook subscriptions ordered per flag (`"delivery":
              {"ordering": "flag"}`) and events over 100 flags, in the same alternation;
              the receiver's arrival times are checked to follow event order per flag
  render cost render_request in this process for slack, datadog and msteams, per delivery
  latency     200 events/s, one event per POST, 5 subscriptions: ingest -> first attempt
  plain loop  (a) one httpx.Client POSTing in a loop to a receiver answering at once:
              the client-side limit of one Python process
  naive       (b) a Celery task per delivery doing one httpx.post, default prefork pool
              (concurrency = cores), to the 100 ms receiver

Figures are medians of `--runs` runs; a plot goes to docs/delivery-bench.png (matplotlib,
the `bench` extra) or docs/delivery-bench.svg without it.

The API and worker processes (and this script's own relay imports) take relay from the
checkout this file is in, or from the tree named by RELAY_BENCH_ROOT (e.g. a `git worktree`
of an older commit, to compare the same measure across code versions).

    python bench/delivery.py [--events 2000] [--runs 3] [--rates 200,20] [--seconds 10]
                             [--skip-naive] [--skip-integration] [--skip-ordered]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent  # this script, the receiver and the naive app
# the code under test: what the API and worker processes import
ROOT = Path(os.environ.get("RELAY_BENCH_ROOT") or BENCH.parent).resolve()
sys.path.insert(0, str(ROOT))

from relay.cli.embedded_redis import free_port, start_redis  # noqa: E402
from relay.integrations.catalog import BUILTIN_DIR, WEBHOOK  # noqa: E402
from relay.integrations.manifest import load_manifest  # noqa: E402
from relay.integrations.render import EventContext, render_request  # noqa: E402
from relay.settings import Settings  # noqa: E402
from relay.subscriptions.integration_config import validate_form  # noqa: E402
from workers.celery_app import worker_args  # noqa: E402

ADMIN = "bench-admin-token"
SUBSCRIPTIONS = 5
RECEIVER_DELAY = 0.1
TARGET_RATE = 1000.0
TARGET_RATIO = 0.6
TARGET_P99_MS = 250.0
TARGET_EVENTS_RATE = 200.0
INTEGRATION = "slack"  # the templated integration of the throughput phase
TARGET_TEMPLATED_RATIO = 0.8  # its deliveries/s over the webhooks' in the same run
TARGET_ORDERED_RATIO = 0.5  # ordered-per-flag deliveries/s over the webhooks' (issue 15)
FLAGS = 50  # distinct flags of the unordered phases' events
ORDERED_FLAGS = 100  # distinct flags of the ordered phase's events: its ordering keys
ORDER_SLACK = 0.005  # s: the receiver's clock against its own 100 ms sleep
WEBHOOKS, TEMPLATED, ORDERED = "webhooks", "templated", "ordered"  # the sets of 5
ALL_FLAGS = {"effect": "allow", "resources": ["proj/*:env/*:flag/*"], "actions": ["*"]}
# configs rendered in-process for the render cost (hosts are never contacted)
RENDER_CONFIGS: dict[str, dict[str, Any]] = {
    "slack": {"url": "https://hooks.slack.com/services/T0000/B0000/bench"},
    "datadog": {"apiKey": "bench-api-key"},
    "msteams": {"url": "https://bench.webhook.office.com/workflows/bench"},
}
RENDERS = 2000  # render_request calls per timed batch
RENDER_BATCHES = 5


@dataclass
class Latency:
    rate: float  # events/s asked for
    achieved: float  # events/s the driver managed
    millis: list[float]  # ingest -> first attempt, per delivery


@dataclass
class Figures:
    relay: list[float] = field(default_factory=list)
    relay_cpu_ms: list[float] = field(default_factory=list)  # worker CPU per delivery
    # Redis CPU per delivery: its share of the events' ingest, the fan-out, the claims,
    # outcomes and Celery's messages (what one Redis core can carry: docs/operations.md)
    relay_redis_us: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    plain_cpu_ms: list[float] = field(default_factory=list)  # client CPU per request
    naive: list[float] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    templated: list[float] = field(default_factory=list)  # run n pairs with relay[n]
    templated_cpu_ms: list[float] = field(default_factory=list)
    ordered: list[float] = field(default_factory=list)  # run n pairs with relay[n]
    ordered_cpu_ms: list[float] = field(default_factory=list)
    ordered_order: list[Order] = field(default_factory=list)  # per run
    violated: int = 0  # arrivals out of order per flag, warm-up included
    violations: list[str] = field(default_factory=list)  # the first few of each phase
    load: list[float] = field(default_factory=list)  # 1-minute load average as a run starts
    code: str = ""  # the tree the processes imported relay from, and its commit
    render_us: dict[str, float] = field(default_factory=dict)  # per delivery, by key
    context_us: float = 0.0  # the audit entry and its JSON-escaped form, per event


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stack:
    """Redis, receiver, API and worker processes for one benchmark run."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.probe = httpx.Client(timeout=10)  # one keep-alive client for polling
        self.redis = start_redis(workdir / "redis")
        self.receiver_port = free_port()
        self.api_port = free_port()
        self.env = {
            **os.environ,
            "RELAY_REDIS_URL": self.redis.url,
            "RELAY_ADMIN_TOKEN": ADMIN,
            "RELAY_ALLOW_PRIVATE_DESTINATIONS": "true",
            "RELAY_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **{k: v for k, v in os.environ.items() if k.startswith("RELAY_")},
        }

    @property
    def receiver(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def spawn(self, name: str, command: list[str], **extra: Any) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        # `python -m` puts the working directory first on sys.path, before PYTHONPATH
        extra.setdefault("cwd", str(ROOT))
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env, **extra
        )
        self.processes.append(process)
        return process

    def start(self) -> None:
        receiver = [sys.executable, str(BENCH / "receiver.py")]
        self.spawn("receiver", [*receiver, "--port", str(self.receiver_port), "--delay", "0.1"])
        api = [sys.executable, "-m", "uvicorn", "relay.api.app:create_app", "--factory"]
        api += ["--host", "127.0.0.1", "--port", str(self.api_port), "--log-level", "warning"]
        self.spawn("api", api)
        celery = [sys.executable, "-m", "celery", "-A", "workers.celery_app"]
        celery += worker_args(Settings(log_level="WARNING"), beat=True)
        celery += ["-s", str(self.workdir / "beat-schedule")]
        self.worker_pid = self.spawn("worker", celery).pid
        _wait_http(f"{self.receiver}/count")
        _wait_http(f"{self.api}/healthz")
        _wait_for_worker(self.redis.url)

    def code_under_test(self) -> str:
        """ROOT and its commit, after checking that a process started as the API and the
        worker are (same environment and directory) imports policies, relay and workers
        from it."""
        probe = "import policies, relay, workers; print(policies.__file__, relay.__file__,"
        probe += " workers.__file__)"
        paths = subprocess.run(
            [sys.executable, "-c", probe],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if not all(Path(path).resolve().is_relative_to(ROOT) for path in paths):
            raise RuntimeError(f"the processes would import {paths}, not from {ROOT}")
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return f"{ROOT} ({commit[:70] or 'not a git tree'})"

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.redis.stop()


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def _wait_for_worker(redis_url: str, timeout: float = 40.0) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.zcard("relay:workers"):
            return
        time.sleep(0.1)
    raise RuntimeError("the worker did not start")


def event(index: int, flags: int = FLAGS) -> dict[str, Any]:
    """The index-th bench event, on flag `index % flags`."""
    return {
        "type": "feature-environment-enabled",
        "createdBy": "bench@example.com",
        "featureName": f"bench-flag-{index % flags}",
        "project": "default",
        "environment": "production",
        "data": {"name": f"bench-flag-{index % flags}", "enabled": True, "n": index},
        "tags": [{"type": "simple", "value": "bench"}],
    }


def subscribe(api: httpx.Client, stack: Stack, *, ordered: bool = False) -> list[str]:
    """Five webhook subscriptions to the slow receiver: on, or (`ordered`) off and ordered
    per flag, for the ordered phase to turn on."""
    ids = []
    for n in range(SUBSCRIPTIONS):
        config = {"url": f"{stack.receiver}/slow", "format": "unleash" if n % 2 else "launchdarkly"}
        body: dict[str, Any] = {"name": f"bench-{n}", "config": config, "on": not ordered}
        if ordered:
            body |= {"name": f"bench-ordered-{n}", "delivery": {"ordering": "flag"}}
        response = api.post("/api/v2/integrations/webhook", json=body)
        response.raise_for_status()
        ids.append(response.json()["_id"])
    return ids


def subscribe_templated(api: httpx.Client, stack: Stack) -> list[str]:
    """Five `slack` subscriptions, off and without a rate limit, each at its own path of
    the slow receiver (its arrivals carry no webhook-id: the path tells whose they are)."""
    ids = []
    for n in range(SUBSCRIPTIONS):
        body = {
            "name": f"bench-{INTEGRATION}-{n}",
            "config": {"url": f"{stack.receiver}/slow/{INTEGRATION}-{n}"},
            "statements": [ALL_FLAGS],
            "on": False,
            # the phase measures rendering, not Slack's documented rate (its manifest's
            # deliveryDefaults, 1 a second): no limit
            "delivery": {"maxPerSecond": None},
        }
        response = api.post(f"/api/v2/integrations/{INTEGRATION}", json=body)
        response.raise_for_status()
        ids.append(response.json()["_id"])
    return ids


@dataclass
class Switch:
    """The sets of five subscriptions by kind (webhooks, templated, ordered), each with its
    integration key and ids; one set is on at a time."""

    api: httpx.Client
    stack: Stack
    sets: dict[str, tuple[str, list[str]]]
    on: str = WEBHOOKS

    def use(self, kind: str) -> None:
        """Turn the set that is on off, then `kind`'s on, and wait until deliveries follow."""
        if kind == self.on:
            return
        for (key, ids), value in ((self.sets[self.on], False), (self.sets[kind], True)):
            patch = [{"op": "replace", "path": "/on", "value": value}]
            for sub_id in ids:
                self.api.patch(
                    f"/api/v2/integrations/{key}/{sub_id}", json=patch
                ).raise_for_status()
        self.on = kind
        wait_until_switched(self, kind)

    def kind_of(self, arrival_id: str) -> str:
        """The kind of set an arrival came from: templated by its path (the receiver's id for
        a request without webhook-id), a webhook by the subscription in its webhook-id."""
        if arrival_id.startswith("/"):
            return TEMPLATED
        _, ordered_ids = self.sets.get(ORDERED, (WEBHOOK, []))
        return ORDERED if subscription_of(arrival_id) in ordered_ids else WEBHOOKS


def subscription_of(webhook_id: str) -> str:
    """The subscription id in a webhook-id, `msg_<event>_<subscription>`."""
    return webhook_id.split("_")[2]


def wait_until_switched(switch: Switch, kind: str, attempts: int = 40) -> None:
    """POST one event until its deliveries come from the set that is on, and only from it:
    the API and the worker rebuild their subscription index in the background."""
    stack = switch.stack
    for _ in range(attempts):
        stack.probe.post(f"{stack.receiver}/reset")
        switch.api.post("/api/events", json=[event(0)]).raise_for_status()
        try:
            wait_for_deliveries(stack, SUBSCRIPTIONS, timeout=5)
        except RuntimeError:
            continue
        time.sleep(3 * RECEIVER_DELAY)  # a delivery to the other set would be here by now
        arrivals = receiver_dump(stack)
        kinds = {switch.kind_of(arrival_id) for arrival_id, _ in arrivals}
        if len(arrivals) == SUBSCRIPTIONS and kinds == {kind}:
            return
    raise RuntimeError("deliveries did not follow the subscriptions turned on")


def check_arrivals(arrivals: list[tuple[str, float]], events: int, *, templated: bool) -> None:
    """Raise if a delivery is missing: webhooks by distinct webhook-id; the templated ones,
    which carry none, by `events` arrivals at each subscription's path (a duplicate comes
    only from a retry, which a receiver answering 200 does not cause)."""
    if templated:
        per_path = Counter(arrival_id.split("#")[0] for arrival_id, _ in arrivals)
        if len(per_path) < SUBSCRIPTIONS or min(per_path.values()) < events:
            raise RuntimeError(f"a delivery is missing: {dict(per_path)} of {events} each")
    elif len({arrival_id for arrival_id, _ in arrivals}) < events * SUBSCRIPTIONS:
        raise RuntimeError("a delivery is missing")


@dataclass
class Order:
    """What the receiver saw of the order per (subscription, flag) in an ordered phase."""

    gaps_ms: list[float] = field(default_factory=list)  # an answer -> the flag's next arrival
    duplicates: int = 0  # arrivals of a webhook-id already seen
    violated: int = 0  # arrivals before the flag's previous event was answered
    violations: list[str] = field(default_factory=list)  # the first few, described
    suspects: list[tuple[str, int]] = field(default_factory=list)  # their (subscription, event)


def check_order(arrivals: list[tuple[str, float]], flag_of: dict[int, int]) -> Order:
    """Each flag's deliveries at each subscription, in relay's event order (its ids follow
    the order it recorded events): a violation is an arrival before the receiver had
    answered (RECEIVER_DELAY after it arrived) the last arrival of the flag's previous
    event; also the hand-on gaps and duplicates. Arrivals of events not in `flag_of` (none
    of this phase's) are left out."""
    keys: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for webhook_id, at in arrivals:
        event_id = event_of(webhook_id)
        if event_id in flag_of:
            key = (subscription_of(webhook_id), flag_of[event_id])
            keys.setdefault(key, []).append((event_id, at))
    order = Order()
    for key, timeline in keys.items():
        timeline.sort()
        for (before, arrived_before), (event_id, at) in pairwise(timeline):
            answered = arrived_before + RECEIVER_DELAY
            if event_id == before:
                order.duplicates += 1
            elif at < answered - ORDER_SLACK:
                order.violated += 1
                if len(order.violations) < 5:
                    describe_violation(order, key, timeline, (before, event_id))
            else:
                order.gaps_ms.append((at - answered) * 1000)
    return order


def describe_violation(
    order: Order, key: tuple[str, int], timeline: list[tuple[int, float]], pair: tuple[int, int]
) -> None:
    """Add to `order` a violation by `pair` (earlier event, later event) at `key`, with the
    key's first 40 arrivals (event ids sorted, seconds from the key's first arrival)."""
    start = min(at for _, at in timeline)
    arrived = ", ".join(f"{n} at +{at - start:.3f}" for n, at in timeline[:40])
    before, event_id = pair
    order.violations.append(
        f"subscription {key[0]}, flag {key[1]}: event {event_id} arrived before event"
        f" {before} was answered ({arrived})"
    )
    order.suspects += [(key[0], before), (key[0], event_id)]


def attempts_of(api: httpx.Client, order: Order) -> str:
    """The delivery records (state, attempts) of the events in the order's violations."""
    lines = []
    for sub_id, event_id in order.suspects:
        path = f"/api/v2/integrations/webhook/{sub_id}/deliveries/msg_{event_id}_{sub_id}"
        lines.append(f"{path}: {api.get(path).text[:1500]}")
    return "\n".join(lines)


def event_of(webhook_id: str) -> int:
    """The relay event id in a webhook-id, `msg_<event>_<subscription>`."""
    return int(webhook_id.split("_")[1])


def receiver_count(stack: Stack) -> int:
    return int(stack.probe.get(f"{stack.receiver}/count").json()["count"])


def receiver_dump(stack: Stack) -> list[tuple[str, float]]:
    return [(i, t) for i, t in stack.probe.get(f"{stack.receiver}/dump", timeout=30).json()]


def wait_for_deliveries(stack: Stack, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while receiver_count(stack) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {receiver_count(stack)} of {count} deliveries arrived")
        time.sleep(0.2)  # the driver's own CPU is taken from the processes measured


@dataclass
class Phase:
    """One throughput phase of one kind of subscriptions."""

    rate: float  # deliveries/s until the last one arrived
    cpu_ms: float  # worker CPU per delivery
    redis_us: float  # Redis CPU per delivery, everything included
    order: Order  # ordered: what the receiver saw of the order


def measure_relay(api: httpx.Client, stack: Stack, events: int, kind: str = WEBHOOKS) -> Phase:
    """`events` events (x5 subscriptions of `kind`) POSTed in batches of 100: deliveries/s,
    worker CPU and, ordered, the order seen at the receiver; raises if a delivery is
    missing."""
    flags = ORDERED_FLAGS if kind == ORDERED else FLAGS
    stack.probe.post(f"{stack.receiver}/reset")
    expected = events * SUBSCRIPTIONS
    cpu_before = cpu_seconds(stack.worker_pid)
    redis_before = cpu_seconds(stack.redis.process.pid)
    started = time.time()
    flag_of: dict[int, int] = {}  # relay's event id -> the flag's number
    for start in range(0, events, 100):
        indices = range(start, min(events, start + 100))
        response = api.post("/api/events", json=[event(i, flags) for i in indices])
        response.raise_for_status()
        flag_of |= {n: i % flags for n, i in zip(response.json()["ids"], indices, strict=True)}
    wait_for_deliveries(stack, expected)
    cpu_ms = (cpu_seconds(stack.worker_pid) - cpu_before) * 1000 / expected
    redis_us = (cpu_seconds(stack.redis.process.pid) - redis_before) * 1e6 / expected
    arrivals = receiver_dump(stack)
    last = max(t for _, t in arrivals)
    check_arrivals(arrivals, events, templated=kind == TEMPLATED)
    order = check_order(arrivals, flag_of) if kind == ORDERED else Order()
    if order.violations:  # described now, while their delivery records are kept
        order.violations.append(attempts_of(api, order))
    return Phase(expected / (last - started), cpu_ms, redis_us, order)


def measure_latency(api: httpx.Client, stack: Stack, rate: float, seconds: float) -> Latency:
    """Ingest -> first attempt (ms) for every delivery at `rate` events/s, one per POST."""
    stack.probe.post(f"{stack.receiver}/reset")
    total = int(rate * seconds)
    sent, achieved = asyncio.run(_drive(stack.api_port, rate, total))
    wait_for_deliveries(stack, total * SUBSCRIPTIONS)
    first: dict[str, float] = {}
    for webhook_id, arrived in receiver_dump(stack):
        first[webhook_id] = min(arrived, first.get(webhook_id, arrived))
    millis = [
        (arrived - sent[int(webhook_id.split("_")[1])]) * 1000
        for webhook_id, arrived in first.items()
    ]
    return Latency(rate=rate, achieved=achieved, millis=millis)


async def _drive(port: int, rate: float, total: int) -> tuple[dict[int, float], float]:
    """POST `total` events, one per request, the n-th at start + n / rate, over keep-alive
    connections (16, so a slow answer does not delay the next event). Raw HTTP/1.1 on
    asyncio: the driver shares the two cores with what it measures, and httpx in threads
    took a third of a core at 200 requests/s. Returns relay id -> time of sending."""
    sent: dict[int, float] = {}
    schedule = asyncio.Queue[int]()
    for n in range(total):
        schedule.put_nowait(n)
    started = time.time() + 0.05

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            b"POST /api/events HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
            b"authorization: %s\r\n" % ADMIN.encode()
        )
        try:
            while not schedule.empty():
                n = schedule.get_nowait()
                pause = started + n / rate - time.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                body = json.dumps(event(n)).encode()
                at = time.time()
                writer.write(b"%scontent-length: %d\r\n\r\n%s" % (head, len(body), body))
                answer = await reader.readuntil(b"\r\n\r\n")
                length = int(answer.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                payload = await reader.readexactly(length)
                if answer[9:12] != b"202":
                    raise RuntimeError(f"ingest answered {answer[9:12]!r}: {payload!r}")
                [event_id] = json.loads(payload)["ids"]
                sent[event_id] = at
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(16)))
    return sent, total / (time.time() - started)


def measure_plain_loop(stack: Stack, seconds: float = 3.0) -> tuple[float, float]:
    """(a) Requests/s of one httpx.Client POSTing in a loop to an immediate receiver,
    and its CPU milliseconds per request."""
    body = json.dumps(event(0)).encode()
    headers = {"content-type": "application/json", "webhook-id": "plain"}
    count = 0
    with httpx.Client() as client:
        cpu_before = time.process_time()
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            client.post(f"{stack.receiver}/fast", content=body, headers=headers)
            count += 1
        rate = count / (time.perf_counter() - started)
        return rate, (time.process_time() - cpu_before) * 1000 / count


def measure_render_costs() -> tuple[dict[str, float], float]:
    """Microseconds per render_request of each RENDER_CONFIGS integration over a stored
    bench event (median of RENDER_BATCHES batches of RENDERS), and per event for its audit
    entry and JSON-escaped form, which the worker makes once for a batch's deliveries."""
    stored = {**event(7), "id": 7, "createdAt": "2026-01-01T00:00:00.000Z"}
    costs = {}
    for key, raw in RENDER_CONFIGS.items():
        manifest = load_manifest(BUILTIN_DIR / key, builtin=True)
        config, _ = validate_form(manifest, raw, stored=None)
        context = EventContext.of(stored)
        costs[key] = median_micros(partial(render_request, manifest, config, context))
    return costs, median_micros(lambda: EventContext.of(stored).escaped)


def median_micros(call: Callable[[], object]) -> float:
    """Median over RENDER_BATCHES batches of the microseconds per call of `call`."""
    call()  # a first call fills caches (the JSON-escaped entry) the way a batch's first does
    samples = []
    for _ in range(RENDER_BATCHES):
        started = time.perf_counter()
        for _ in range(RENDERS):
            call()
        samples.append((time.perf_counter() - started) * 1e6 / RENDERS)
    return statistics.median(samples)


def measure_naive(stack: Stack, deliveries: int, runs: int) -> list[float]:
    """(b) Deliveries/s of a task-per-delivery Celery worker on the default prefork pool."""
    broker = stack.redis.url.rsplit("/", 1)[0] + "/1"
    stack.env["NAIVE_BROKER_URL"] = broker
    command = [sys.executable, "-m", "celery", "-A", "naive_app", "worker", "--loglevel=WARNING"]
    worker = stack.spawn("naive-worker", command, cwd=str(BENCH))
    sys.path.insert(0, str(BENCH))
    os.environ["NAIVE_BROKER_URL"] = broker
    import naive_app

    time.sleep(3)  # prefork children starting; a first task would pay for it
    body = json.dumps(event(0))
    rates = []
    for _ in range(runs):
        stack.probe.post(f"{stack.receiver}/reset")
        started = time.time()
        for n in range(deliveries):
            naive_app.post.delay(f"{stack.receiver}/slow", body, {"webhook-id": f"naive_{n}"})
        wait_for_deliveries(stack, deliveries)
        last = max(t for _, t in receiver_dump(stack))
        rates.append(deliveries / (last - started))
    worker.terminate()
    worker.wait(15)
    return rates


@contextmanager
def running_stack() -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    stack = Stack(workdir)
    try:
        stack.start()
        yield stack
    except BaseException:
        for log in sorted(workdir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run(arguments: argparse.Namespace) -> Figures:
    figures = Figures()
    if not arguments.skip_integration:  # before the stack starts: its processes are idle then
        figures.render_us, figures.context_us = measure_render_costs()
    with running_stack() as stack:
        figures.code = stack.code_under_test()
        api = httpx.Client(base_url=stack.api, headers={"Authorization": ADMIN}, timeout=30)
        switch = set_up(api, stack, arguments, figures)
        for n in range(arguments.runs):
            measure_run(arguments, figures, switch, reverse=n % 2 == 1)
        switch.use(WEBHOOKS)  # latency reads the event from the webhook-id
        for rate in arguments.rates:
            figures.latency.append(measure_latency(api, stack, rate, arguments.seconds))
        if not arguments.skip_naive:
            figures.naive = measure_naive(stack, arguments.naive_deliveries, arguments.runs)
    return figures


def set_up(
    api: httpx.Client, stack: Stack, arguments: argparse.Namespace, figures: Figures
) -> Switch:
    """The webhooks, on, and the templated and ordered sets unless skipped, off; each set
    warmed up (connection pools, subscription index) by a phase of 1,000 events, whose
    order violations count too."""
    switch = Switch(api, stack, {WEBHOOKS: (WEBHOOK, subscribe(api, stack))})
    if not arguments.skip_integration:
        switch.sets[TEMPLATED] = (INTEGRATION, subscribe_templated(api, stack))
    if not arguments.skip_ordered:
        switch.sets[ORDERED] = (WEBHOOK, subscribe(api, stack, ordered=True))
    for kind in switch.sets:
        switch.use(kind)
        order = measure_relay(api, stack, 1000, kind).order
        figures.violated += order.violated
        figures.violations += order.violations
    return switch


def measure_run(
    arguments: argparse.Namespace, figures: Figures, switch: Switch, *, reverse: bool
) -> None:
    """One run: the templated, ordered (unless skipped) and plain webhook phases in that
    order, or the `reverse`, so that each pairs with the webhooks next to it; then (a)."""
    figures.load.append(os.getloadavg()[0])
    kinds = [kind for kind in (TEMPLATED, ORDERED, WEBHOOKS) if kind in switch.sets]
    for kind in kinds[::-1] if reverse else kinds:
        switch.use(kind)
        phase = measure_relay(switch.api, switch.stack, arguments.events, kind)
        rates, cpus = {
            WEBHOOKS: (figures.relay, figures.relay_cpu_ms),
            TEMPLATED: (figures.templated, figures.templated_cpu_ms),
            ORDERED: (figures.ordered, figures.ordered_cpu_ms),
        }[kind]
        rates.append(phase.rate)
        cpus.append(phase.cpu_ms)
        if kind == WEBHOOKS:
            figures.relay_redis_us.append(phase.redis_us)
        if kind == ORDERED:
            figures.ordered_order.append(phase.order)
            figures.violated += phase.order.violated
            figures.violations += phase.order.violations
    rate, cpu_ms = measure_plain_loop(switch.stack)
    figures.plain.append(rate)
    figures.plain_cpu_ms.append(cpu_ms)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(figures: Figures) -> list[str]:
    relay, plain = statistics.median(figures.relay), statistics.median(figures.plain)
    relay_cpu, plain_cpu = (
        statistics.median(figures.relay_cpu_ms),
        statistics.median(figures.plain_cpu_ms),
    )
    lines = [
        f"code under test: {figures.code}",
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
        f" (1 min; as each run started: {', '.join(f'{load:.1f}' for load in figures.load)});"
        f" receivers answer after {RECEIVER_DELAY * 1000:.0f} ms",
        f"relay worker        {relay:8.0f} deliveries/s  (runs: {_runs(figures.relay)});"
        f" worker CPU {relay_cpu:.2f} ms/delivery",
        _redis_share(figures),
        f"(a) plain loop      {plain:8.0f} requests/s    (runs: {_runs(figures.plain)});"
        f" client CPU {plain_cpu:.2f} ms/request",
    ]
    if figures.naive:
        naive = statistics.median(figures.naive)
        lines.append(
            f"(b) naive prefork   {naive:8.1f} deliveries/s  (runs: {_runs(figures.naive)})"
            f"  relay / naive = {relay / naive:.0f}x"
        )
    ratio = relay / plain
    lines += [
        f"relay / plain loop  {ratio:8.2f}   (target >= {TARGET_RATIO})"
        f" {_verdict(ratio >= TARGET_RATIO)}; CPU per send, plain / relay ="
        f" {plain_cpu / relay_cpu:.2f}",
        f"throughput          {relay:8.0f}/s (target >= {TARGET_RATE:.0f}/s)"
        f" {_verdict(relay >= TARGET_RATE)}",
    ]
    if figures.templated:
        lines += report_templated(figures)
    if figures.ordered:
        lines += report_ordered(figures)
    for latency in figures.latency:
        p50, p99 = percentile(latency.millis, 0.50), percentile(latency.millis, 0.99)
        target = f" (target p99 <= {TARGET_P99_MS:.0f} ms) {_verdict(p99 <= TARGET_P99_MS)}"
        lines.append(
            f"latency at {latency.rate:.0f} events/s (driver reached {latency.achieved:.0f}) x"
            f" {SUBSCRIPTIONS} subscriptions, {len(latency.millis)} deliveries: ingest -> first"
            f" attempt p50 {p50:.0f} ms, p99 {p99:.0f} ms"
            + (target if latency.rate == TARGET_EVENTS_RATE else "")
        )
    return lines


def _redis_share(figures: Figures) -> str:
    """Redis CPU per delivery, and the deliveries/s that makes one Redis core's worth."""
    redis_us = statistics.median(figures.relay_redis_us)
    return (
        f"Redis CPU           {redis_us:8.1f} us/delivery (runs: {_runs(figures.relay_redis_us)};"
        f" ingest, fan-out, claim, outcome and Celery's messages): one Redis core carries"
        f" about {1e6 / redis_us:,.0f} deliveries/s"
    )


def report_templated(figures: Figures) -> list[str]:
    """The templated phase: its throughput next to the webhooks' of the same runs, the
    ratio per run (median) against its target, and the in-process render costs."""
    templated, webhooks = statistics.median(figures.templated), statistics.median(figures.relay)
    ratios = [t / w for t, w in zip(figures.templated, figures.relay, strict=True)]
    ratio = statistics.median(ratios)
    costs = ", ".join(f"{key} {micros:.0f} µs" for key, micros in figures.render_us.items())
    return [
        f"templated {INTEGRATION:9} {templated:8.0f} deliveries/s  (runs:"
        f" {_runs(figures.templated)}); worker CPU"
        f" {statistics.median(figures.templated_cpu_ms):.2f} ms/delivery",
        f"plain webhooks      {webhooks:8.0f} deliveries/s  (runs: {_runs(figures.relay)},"
        f" alternating with the templated); worker CPU"
        f" {statistics.median(figures.relay_cpu_ms):.2f} ms/delivery",
        f"templated / plain   {ratio:8.2f}   (per run: {', '.join(f'{r:.2f}' for r in ratios)};"
        f" target >= {TARGET_TEMPLATED_RATIO}) {_verdict(ratio >= TARGET_TEMPLATED_RATIO)}",
        f"render cost: {costs} per delivery (render_request in-process, median of"
        f" {RENDER_BATCHES} x {RENDERS:,}); audit entry + JSON escaping"
        f" {figures.context_us:.0f} µs per event, shared by its deliveries in a batch",
    ]


def report_ordered(figures: Figures) -> list[str]:
    """The phase ordered per flag: each run's deliveries/s next to the unordered webhooks'
    of the same run, the median ratio against its target, worker CPU and hand-on gaps."""
    ratios = [o / w for o, w in zip(figures.ordered, figures.relay, strict=True)]
    ratio = statistics.median(ratios)
    lines = [
        f"ordered per flag    {statistics.median(figures.ordered):8.0f} deliveries/s  (runs:"
        f" {_runs(figures.ordered)}); worker CPU"
        f" {statistics.median(figures.ordered_cpu_ms):.2f} ms/delivery;"
        f" {ORDERED_FLAGS} flags x {SUBSCRIPTIONS} subscriptions, order checked at the receiver",
        f"unordered webhooks  {statistics.median(figures.relay):8.0f} deliveries/s  (runs:"
        f" {_runs(figures.relay)}, same runs); worker CPU"
        f" {statistics.median(figures.relay_cpu_ms):.2f} ms/delivery",
    ]
    for n, (ordered, unordered, order) in enumerate(
        zip(figures.ordered, figures.relay, figures.ordered_order, strict=True)
    ):
        lines.append(
            f"  run {n + 1}: ordered {ordered:.0f}/s, unordered {unordered:.0f}/s, ratio"
            f" {ordered / unordered:.2f}; worker CPU {figures.ordered_cpu_ms[n]:.2f} vs"
            f" {figures.relay_cpu_ms[n]:.2f} ms/delivery; a flag's answer -> its next arrival"
            f" (hand-on and queueing) {_spread(order.gaps_ms)}; {order.duplicates} duplicates,"
            f" {order.violated} out of order"
        )
    lines.append(
        f"ordered / unordered {ratio:8.2f}   (target >= {TARGET_ORDERED_RATIO})"
        f" {_verdict(ratio >= TARGET_ORDERED_RATIO)}"
    )
    return lines + report_violations(figures)


def report_violations(figures: Figures) -> list[str]:
    """The order seen at the receiver: kept, or the violations with their records."""
    if not figures.violated:
        return ["order per flag      kept in every ordered phase (warm-up included)"]
    return [f"order per flag      VIOLATED by {figures.violated} arrivals:", *figures.violations]


def _spread(millis: list[float]) -> str:
    """p50, p90, p99 and max of some milliseconds."""
    if not millis:
        return "none"
    shares = ", ".join(
        f"p{share * 100:.0f} {percentile(millis, share):.0f}" for share in (0.5, 0.9, 0.99)
    )
    return f"{shares}, max {max(millis):.0f} ms"


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def plot(figures: Figures, out_dir: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _svg(figures, out_dir / "delivery-bench.svg")
    fig, (bars, cdf) = plt.subplots(1, 2, figsize=(12, 4.8))
    names = ["relay worker\n(100 ms receiver)", "(a) plain httpx loop\n(0 ms receiver)"]
    values = [statistics.median(figures.relay), statistics.median(figures.plain)]
    colors = ["#2b7bba", "#999999"]
    if figures.naive:
        names.append("(b) naive prefork\n(100 ms receiver)")
        values.append(statistics.median(figures.naive))
        colors.append("#d9822b")
    if figures.templated:
        names.append(f"relay, {INTEGRATION}\n(templated, 100 ms)")
        values.append(statistics.median(figures.templated))
        colors.append("#6a3d9a")
    if figures.ordered:
        names.append(f"relay, ordered per flag\n({ORDERED_FLAGS} flags, 100 ms)")
        values.append(statistics.median(figures.ordered))
        colors.append("#33a02c")
    bars.bar(names, values, color=colors)
    bars.axhline(TARGET_RATE, color="green", linestyle="--", label="target 1,000/s")
    for x, value in enumerate(values):
        bars.text(x, value, f"{value:,.0f}", ha="center", va="bottom")
    bars.set_ylabel("deliveries (requests) per second, median")
    bars.set_title("Throughput, 1 API + 1 worker process, 2 cores")
    bars.legend()
    for latency, color in zip(figures.latency, ["#2b7bba", "#d9822b", "#6a3d9a"], strict=False):
        ordered = sorted(latency.millis)
        shares = [(i + 1) / len(ordered) for i in range(len(ordered))]
        label = f"{latency.rate:.0f} events/s ({latency.rate * SUBSCRIPTIONS:.0f} deliveries/s)"
        cdf.plot(ordered, shares, color=color, label=label)
    cdf.axvline(TARGET_P99_MS, color="green", linestyle="--", label="target p99 250 ms")
    cdf.axhline(0.99, color="#999999", linestyle=":", label="99th percentile")
    cdf.set_xscale("log")
    cdf.set_xlabel("ingest -> first attempt arrives at the receiver (ms, log)")
    cdf.set_ylabel("share of deliveries")
    cdf.set_title(f"Latency, one event per POST, x {SUBSCRIPTIONS} subscriptions")
    cdf.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    path = out_dir / "delivery-bench.png"
    fig.savefig(path, dpi=110)
    return path


def _svg(figures: Figures, path: Path) -> Path:
    values = [
        ("relay", statistics.median(figures.relay)),
        ("plain", statistics.median(figures.plain)),
    ]
    if figures.naive:
        values.append(("naive", statistics.median(figures.naive)))
    if figures.templated:
        values.append((INTEGRATION, statistics.median(figures.templated)))
    if figures.ordered:
        values.append((ORDERED, statistics.median(figures.ordered)))
    top = max(v for _, v in values)
    width = 60 + 120 * len(values)
    rects = "".join(
        f'<rect x="{40 + i * 120}" y="{260 - 220 * v / top:.0f}" width="80" '
        f'height="{220 * v / top:.0f}" fill="#2b7bba"/>'
        f'<text x="{80 + i * 120}" y="280" text-anchor="middle">{name} {v:,.0f}/s</text>'
        for i, (name, v) in enumerate(values)
    )
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="300">{rects}</svg>'
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="relay delivery benchmark")
    parser.add_argument("--events", type=int, default=2000, help="events per throughput run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--rates",
        type=lambda text: [float(x) for x in text.split(",")],
        default=[TARGET_EVENTS_RATE, 20.0],
        help="events/s of the latency phases",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="latency phase length")
    parser.add_argument("--naive-deliveries", type=int, default=100)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--skip-integration", action="store_true", help="no templated phase, no render cost"
    )
    parser.add_argument(
        "--skip-ordered", action="store_true", help="no phase ordered per flag (issue 15)"
    )
    parser.add_argument("--out", type=Path, default=BENCH.parent / "docs")
    arguments = parser.parse_args()
    figures = run(arguments)
    lines = report(figures)
    print("\n".join(lines))
    print(f"plot: {plot(figures, arguments.out)}")
    if figures.violated:
        sys.exit("the order per flag was violated: see above")


if __name__ == "__main__":
    main()
