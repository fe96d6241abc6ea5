"""Benchmark: `GET /api/v2/engineering-insights/flag-events` over 1,000,000 recorded events.

    .venv/bin/python bench/flag_events.py [--events 1000000] [--repeat 40]

Starts an embedded Redis (relay.cli.embedded_redis.start_redis, AOF on) in a temp dir and records
the events through the ingest engineer's own `relay.store.events.record_events` in
batches of 2,000 (one Lua transaction each: the event, every index, the outbox), so the
key layout is exactly the production one. 20 projects x 5 environments, 200 flags per
project (10% of them experiments), createdAt spread over the last 30 days and recorded
in time order (as a live Unleash sends them): four in five events are environment
events (enabled/disabled/strategy), one in five global (tags, metadata). Client metrics
are recorded around the newest 300 events of proj-00/production (apps web and ios, and
`batch` for 5 flags), so pages there compute real impacts.

Each case requests one page through the real endpoint (the FastAPI app in-process via
TestClient: auth, validation, query plan, impact, serialization) and prints p50/p99.
The baseline, in the same run, answers the same request by a full scan: every recorded
event loaded from Redis and filtered, sorted and cut in Python. Prints medians and the
baseline/relay ratio; the target is a filtered page in <= 50 ms at p50.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import redis
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from relay.api.app import create_app  # noqa: E402
from relay.cli.embedded_redis import start_redis  # noqa: E402
from relay.settings import Settings  # noqa: E402
from relay.store import keys  # noqa: E402
from relay.store.evaluations import ToggleCounts, record_evaluations  # noqa: E402
from relay.store.events import record_events  # noqa: E402

PROJECTS = [f"proj-{i:02d}" for i in range(20)]
ENVIRONMENTS = ["production", "staging", "development", "qa", "canary"]
FLAGS_PER_PROJECT = 200
DAY_MS = 86_400_000
BATCH = 2_000
TOKEN = "bench-admin"
PATH = "/api/v2/engineering-insights/flag-events"
TARGET_P50_MS = 50.0
ENV_TYPES = [
    "feature-environment-enabled",
    "feature-environment-disabled",
    "feature-strategy-update",
]
GLOBAL_TYPES = ["feature-tagged", "feature-metadata-updated"]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _flag(project: int, index: int) -> str:
    return f"p{project:02d}-flag-{index:03d}"


def generate(count: int, now_ms: int, rng: random.Random) -> list[dict[str, Any]]:
    """Flag creations 31 days ago, then `count` minus those spread over the last 30 days."""
    events: list[dict[str, Any]] = []
    for p, project in enumerate(PROJECTS):
        for f in range(FLAGS_PER_PROJECT):
            flag_type = "experiment" if f % 10 == 0 else "release"
            data = {"name": _flag(p, f), "type": flag_type}
            events.append(
                _event("feature-created", project, _flag(p, f), None, now_ms - 31 * DAY_MS, data)
            )
    for _ in range(count - len(events)):
        p = rng.randrange(len(PROJECTS))
        flag = _flag(p, rng.randrange(FLAGS_PER_PROJECT))
        at = now_ms - rng.randrange(30 * DAY_MS)
        if rng.random() < 0.8:
            kind, environment = rng.choice(ENV_TYPES), rng.choice(ENVIRONMENTS)
        else:
            kind, environment = rng.choice(GLOBAL_TYPES), None
        events.append(_event(kind, PROJECTS[p], flag, environment, at, {"value": "x"}))
    # recorded in time order, as a live Unleash sends them
    events.sort(key=lambda event: event["createdAt"])
    return events


def _event(
    kind: str, project: str, flag: str, environment: str | None, at: int, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": kind,
        "createdBy": "alice@example.com",
        "createdAt": _iso(at),
        "featureName": flag,
        "project": project,
        "environment": environment,
        "data": data,
        "tags": [],
    }


def load(client: redis.Redis, events: list[dict[str, Any]]) -> float:
    """Record the events in batches; returns seconds taken."""
    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        record_events(client, events=events[start : start + BATCH], source="bench")
    return time.perf_counter() - started


def seed_metrics(client: redis.Redis, now_ms: int, rng: random.Random) -> int:
    """Evaluations around the newest 300 events of proj-00/production; returns their count."""
    newest = client.zrevrange(
        keys.flag_events_in_env("proj-00", "production"), 0, 299, withscores=True
    )
    events = client.mget([keys.event(member) for member, _ in newest])
    for i, (text, (_, at)) in enumerate(zip(events, newest, strict=True)):
        flag = json.loads(text)["featureName"]
        app = "batch" if i < 5 else rng.choice(["web", "ios"])  # batch: a selective app
        for offset, share in ((-5, rng.random()), (5, rng.random())):
            start = int(at) + offset * 60_000
            counts = ToggleCounts(yes=int(share * 100), no=100 - int(share * 100))
            record_evaluations(
                client,
                environment="production",
                app=app,
                start_ms=start,
                stop_ms=start + 1000,
                toggles={flag: counts},
                retention_s=30 * 86_400,
                now_ms=now_ms,
            )
    return len(newest)


def measure(call: Callable[[], Any], repeat: int, warm_up: bool = True) -> tuple[float, float, Any]:
    """p50 and p99 in ms of `repeat` calls (after a warm-up call), and the last result."""
    result = call() if warm_up else None
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return statistics.median(times), p99, result


def full_scan(client: redis.Redis, params: dict[str, Any], window: tuple[int, int]) -> list[int]:
    """The baseline: load every recorded event and filter, sort and cut in Python."""
    total = int(client.get(keys.EVENT_SEQ) or 0)
    found: list[tuple[int, int]] = []
    for start in range(1, total + 1, 10_000):
        texts = client.mget([keys.event(i) for i in range(start, min(total + 1, start + 10_000))])
        for text in texts:
            event = json.loads(text)
            at = _ms(event["createdAt"])
            if (
                event.get("project") == params["projectKey"]
                and event.get("featureName")
                and event.get("environment") in (params["environmentKey"], None)
                and window[0] <= at <= window[1]
                and params.get("query") in (None, event["featureName"])
            ):
                found.append((at, event["id"]))
    found.sort(reverse=True)
    return [event_id for _, event_id in found[: params.get("limit", 20)]]


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def cases(page_of: Callable[[dict[str, Any]], dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    base = {"projectKey": "proj-00", "environmentKey": "production"}
    deep = base | {"limit": 100}
    for _ in range(5):  # up to five pages of 100 in
        following = page_of(deep)["_links"].get("next")
        if following is None:
            break
        deep = deep | {"after": following["href"].rsplit("after=", 1)[1]}
    return [
        ("page, no filter", base),
        ("page, limit 100", base | {"limit": 100}),
        ("page 6 (after cursor)", base | {"after": deep["after"]}),
        ("page back (before cursor)", base | {"before": deep["after"]}),
        ("global=exclude", base | {"global": "exclude"}),
        ("query=flag", base | {"query": _flag(0, 7)}),
        ("applicationKey=batch (5 flags)", base | {"applicationKey": "batch"}),
        ("applicationKey=web (~150 flags)", base | {"applicationKey": "web"}),
        ("expand=experiments", base | {"expand": "experiments"}),
        ("hasExperiments=true", base | {"hasExperiments": "true"}),
        ("hasExperiments=false", base | {"hasExperiments": "false"}),
        ("impactSize=large", base | {"impactSize": "large"}),
        ("impactSize=none", base | {"impactSize": "none"}),
        ("other project, staging", {"projectKey": "proj-13", "environmentKey": "staging"}),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--baseline-runs", type=int, default=2)
    args = parser.parse_args()
    rng = random.Random(7)
    now_ms = int(time.time() * 1000)
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        server = start_redis(Path(tmp))
        try:
            run(server.url, Path(tmp), args, rng, now_ms)
        finally:
            server.stop()


def run(url: str, tmp: Path, args: argparse.Namespace, rng: random.Random, now_ms: int) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    events = generate(args.events, now_ms, rng)
    seconds = load(client, events)
    del events
    memory = client.info("memory")["used_memory_human"]
    print(
        f"recorded {args.events:,} events in {seconds:.1f} s "
        f"({args.events / seconds:,.0f}/s, record_events batches of {BATCH}); Redis {memory}"
    )
    print(f"metrics around {seed_metrics(client, now_ms, rng)} events of proj-00/production")
    settings = Settings(redis_url=url, admin_token=TOKEN, data_dir=tmp / "data")
    http = TestClient(create_app(settings, redis=client))
    http.__enter__()  # the app's lifespan: its runtime (relay/api/runtime.py)
    headers = {"Authorization": TOKEN}

    def page_of(params: dict[str, Any]) -> dict[str, Any]:
        response = http.get(PATH, params=params, headers=headers)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    print(
        f"\n{'case (proj-00/production)':<32} {'p50 ms':>8} {'p99 ms':>8} {'items':>6} {'total':>8}"
    )
    results = {}
    for name, params in cases(page_of):
        p50, p99, answer = measure(lambda params=params: page_of(params), args.repeat)
        results[name] = p50
        items, total = len(answer["items"]), answer["totalCount"]
        print(f"{name:<32} {p50:>8.1f} {p99:>8.1f} {items:>6} {total:>8}")
    baseline(client, page_of, results, args.baseline_runs)


def baseline(
    client: redis.Redis,
    page_of: Callable[[dict[str, Any]], dict[str, Any]],
    results: dict[str, float],
    runs: int,
) -> None:
    print(f"\nbaseline: full scan of every recorded event ({runs} runs each)")
    now = int(time.time() * 1000)
    window = (now - 7 * DAY_MS, now)
    for name, params in [
        ("page, no filter", {"projectKey": "proj-00", "environmentKey": "production"}),
        (
            "query=flag",
            {"projectKey": "proj-00", "environmentKey": "production", "query": _flag(0, 7)},
        ),
    ]:
        p50, p99, ids = measure(partial(full_scan, client, params, window), runs, warm_up=False)
        relay_ids = [int(item["auditLogEntryId"]) for item in page_of(params)["items"]]
        same = "same page" if ids == relay_ids else "PAGES DIFFER"
        ratio = p50 / results[name]
        verdict = "ok" if results[name] <= TARGET_P50_MS else "OVER TARGET"
        print(
            f"{name:<32} scan p50 {p50:>8.0f} ms  p99 {p99:>8.0f} ms  relay p50 "
            f"{results[name]:.1f} ms ({verdict})  ratio {ratio:,.0f}x  {same}"
        )


if __name__ == "__main__":
    main()
