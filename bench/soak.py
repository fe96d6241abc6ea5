"""Fault soak: events at a fixed rate while the worker is killed and Redis restarted; 0 lost.

The relay runs as it does in production, each part its own process: the API (`relay
serve`), a worker (`relay worker`) and the beat schedule (`relay beat`), on an embedded
Redis with AOF. Subscriptions (4 by default, with different policies) point at receivers
on 127.0.0.1 that answer slowly (50-300 ms) and fail 20% of requests with a 500. Meanwhile:

  - the worker is SIGKILLed every `--kill-every` seconds (60) and started again;
  - a child that exits on its own is restarted, as `relay up` (and compose's restart
    policy) do: the Celery worker exits when Redis dies under it while it holds unacked
    messages (kombu fails to restore them on the dead connection), which the soak shows
    in `crashed_and_restarted`;
  - Redis is SIGKILLed once, half way, and restarted on the same data directory and port,
    so it reloads its AOF. The soak's Redis runs with `appendfsync always`: with the
    default `everysec`, a kill -9 can lose the last second of writes Redis acknowledged,
    which is Redis's documented trade-off, not the relay's; `always` makes every write
    the API acknowledged durable before the 202, so any loss seen here is the relay's.

Events are POSTed one per request (as Unleash's webhook does) with a producer id; a POST
that fails (Redis down: 503) is sent again until it is acknowledged, which dedupe makes
safe. After the event phase, the drain phase waits until every expected delivery (each
event x each subscription whose policy includes it) has reached its receiver with a 2xx,
or `--drain-timeout`. Reported: events in (acknowledged), deliveries expected, delivered
(distinct webhook-ids answered 2xx), duplicates (2xx receipts beyond the first of a
webhook-id: what receivers dedupe), retries (receipts answered 500), lost (expected, never
delivered: must be 0), and ingest -> first 2xx receipt latency percentiles.

    python bench/soak.py [--duration 300] [--rate 20] [--subscriptions 4] [--json out.json]

Exits 1 when anything was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies import map_event, matches, parse_statements  # noqa: E402
from relay.cli.embedded_redis import EmbeddedRedis, free_port, start_redis  # noqa: E402
from relay.store.deliveries import event_delivery_id  # noqa: E402

ADMIN = "soak-admin-token"
RETRY_SCHEDULE = "1s,2s,4s,8s,16s,30s,60s,60s,60s"  # 10 attempts: 0.2^10 odds of a dead one
LEASE_S = 10  # a killed worker's claimed deliveries are due again after this
POLICIES: list[list[dict[str, Any]]] = [
    [],  # everything
    [{"effect": "allow", "resources": ["proj/*:env/production:flag/*"], "actions": ["*"]}],
    [{"effect": "allow", "resources": ["proj/default:env/*:flag/*"], "actions": ["updateOn"]}],
    [
        {"effect": "allow", "resources": ["proj/*:env/*:flag/*"], "actions": ["*"]},
        {"effect": "deny", "resources": ["proj/*:env/development:flag/*"], "actions": ["*"]},
    ],
]
TYPES = [
    ("feature-created", None),
    ("feature-updated", None),
    ("feature-environment-enabled", "production"),
    ("feature-environment-disabled", "production"),
    ("feature-environment-enabled", "development"),
    ("feature-strategy-update", "development"),
]


# --- receivers ----------------------------------------------------------------------------


@dataclass
class Receipts:
    """Every request the receivers got: webhook-id -> [(arrival time, status answered)]."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    by_id: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    def add(self, webhook_id: str, at: float, status: int) -> None:
        with self.lock:
            self.by_id.setdefault(webhook_id, []).append((at, status))

    def delivered(self) -> dict[str, float]:
        """First 2xx arrival per webhook-id."""
        with self.lock:
            return {
                i: min(at for at, status in rows if status < 300)
                for i, rows in self.by_id.items()
                if any(status < 300 for _, status in rows)
            }

    def counts(self) -> tuple[int, int]:
        """(2xx receipts beyond the first per webhook-id, receipts answered with a failure)."""
        with self.lock:
            rows = [row for receipts in self.by_id.values() for row in receipts]
            ok_ids = sum(1 for receipts in self.by_id.values() if any(s < 300 for _, s in receipts))
        ok = sum(1 for _, status in rows if status < 300)
        return ok - ok_ids, len(rows) - ok


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def start_receiver(receipts: Receipts, *, failure_rate: float, seed: int) -> tuple[str, _Server]:
    """A receiver on 127.0.0.1 answering after 50-300 ms, 500 for `failure_rate` of requests."""
    rng = random.Random(seed)
    rng_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with rng_lock:
                delay, fail = rng.uniform(0.05, 0.3), rng.random() < failure_rate
            time.sleep(delay)
            status = 500 if fail else 200
            # recorded before answering: a worker killed now still counts as delivered
            receipts.add(self.headers.get("webhook-id", ""), time.time(), status)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the worker was killed while waiting for this answer
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    ).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook", server


# --- the relay's processes ------------------------------------------------------------------


class Relay:
    """Redis, API, worker and beat processes, with the faults the soak injects."""

    def __init__(self, workdir: Path, *, log_level: str) -> None:
        self.workdir = workdir
        self.redis_port = free_port()
        self.redis_password = secrets.token_urlsafe(32)  # the same across Redis restarts
        self.api_port = free_port()
        self.redis: EmbeddedRedis = self._start_redis()
        metrics_dir = workdir / "metrics"
        metrics_dir.mkdir()
        self.env = {
            **os.environ,
            "RELAY_REDIS_URL": self.redis.url,
            "RELAY_ADMIN_TOKEN": ADMIN,
            "RELAY_DATA_DIR": str(workdir),
            "RELAY_ALLOW_PRIVATE_DESTINATIONS": "true",
            "RELAY_RETRY_SCHEDULE": RETRY_SCHEDULE,
            "RELAY_DELIVERY_LEASE": str(LEASE_S),
            "RELAY_DELIVERY_TIMEOUT": "5",
            "RELAY_LOG_LEVEL": log_level,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "PYTHONPATH": str(ROOT),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.worker_kills = 0
        self.redis_restarts = 0
        self.crashes: list[str] = []  # children that exited on their own (and were restarted)
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _start_redis(self) -> EmbeddedRedis:
        # every acknowledged write on disk before the reply (see the module docstring)
        return start_redis(
            self.workdir / "redis",
            port=self.redis_port,
            password=self.redis_password,
            config={"appendfsync": "always"},
        )

    def spawn(self, name: str, *arguments: str) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        command = [sys.executable, "-m", "relay.cli", *arguments]
        self.processes[name] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )

    def start(self) -> None:
        self._arguments = {
            "api": ["serve", "--port", str(self.api_port)],
            "worker": ["worker"],
            "beat": ["beat", "--schedule", str(self.workdir / "beat-schedule")],
        }
        for name, arguments in self._arguments.items():
            self.spawn(name, *arguments)
        threading.Thread(target=self.supervise, daemon=True).start()
        _wait(lambda: httpx.get(f"{self.api}/healthz", timeout=1).status_code == 200, "the API")
        _wait(lambda: redis.Redis.from_url(self.redis.url).zcard("relay:workers") > 0, "a worker")

    def kill_worker(self) -> None:
        """SIGKILL the worker (no chance to finish or ack anything) and start a new one."""
        with self._lock:
            os.killpg(self.processes["worker"].pid, signal.SIGKILL)
            self.processes["worker"].wait()
            self.worker_kills += 1
            self.spawn("worker", "worker")

    def supervise(self) -> None:
        """Restart a child that exits on its own, as `relay up` and compose's restart policy do."""
        while not self._stopping.wait(0.5):
            with self._lock:
                for name, process in list(self.processes.items()):
                    if process.poll() is not None and not self._stopping.is_set():
                        self.crashes.append(f"{name} exited with {process.returncode}")
                        self.spawn(name, *self._arguments[name])

    def restart_redis(self, down_for: float = 2.0) -> None:
        """SIGKILL Redis, then start it again on the same directory and port (AOF reload)."""
        self.redis.process.kill()
        self.redis.process.wait()
        time.sleep(down_for)
        self.redis = self._start_redis()
        self.redis_restarts += 1

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            pass  # a restart in progress has finished
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.redis.stop()


def _wait(ready: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (httpx.HTTPError, redis.RedisError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


@contextmanager
def running_relay(keep: bool, log_level: str) -> Iterator[Relay]:
    workdir = Path(tempfile.mkdtemp(prefix="relay-soak-"))
    relay = Relay(workdir, log_level=log_level)
    try:
        relay.start()
        yield relay
    except BaseException:
        for log in sorted(workdir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-2000:]}")
        raise
    finally:
        relay.stop()
        if keep:
            print(f"logs and data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Run:
    expected: dict[str, float] = field(default_factory=dict)  # delivery id -> ingest time
    acked: int = 0
    post_retries: int = 0


def subscribe(api: httpx.Client, urls: list[str]) -> list[tuple[str, list[Any]]]:
    """One subscription per receiver, policies taken in turn from POLICIES."""
    made = []
    for n, url in enumerate(urls):
        statements = POLICIES[n % len(POLICIES)]
        body = {"name": f"soak-{n}", "config": {"url": url}, "statements": statements, "on": True}
        response = api.post("/api/v2/integrations/webhook", json=body)
        response.raise_for_status()
        made.append((response.json()["_id"], parse_statements(statements)))
    return made


def make_event(n: int) -> dict[str, Any]:
    kind, environment = TYPES[n % len(TYPES)]
    event: dict[str, Any] = {
        "id": n,
        "type": kind,
        "createdBy": "soak@example.com",
        "project": "default" if n % 3 else "mobile",
        "featureName": f"soak-flag-{n % 40}",
        "data": {"n": n},
    }
    if environment:
        event["environment"] = environment
    return event


def post_until_acked(api: httpx.Client, event: dict[str, Any], run: Run) -> tuple[int, float]:
    """POST the event until the API acknowledges it; its relay id and when the POST went."""
    while True:
        sent = time.time()
        try:
            response = api.post("/api/events?source=soak", json=event)
            if response.status_code == 202:
                return int(response.json()["ids"][0]), sent
        except httpx.HTTPError:
            pass
        run.post_retries += 1
        time.sleep(0.25)


def drive(
    api: httpx.Client,
    subs: list[tuple[str, list[Any]]],
    args: argparse.Namespace,
    run: Run,
    relay: Relay,
) -> None:
    """Send events at `args.rate` for `args.duration` seconds while injecting the faults."""
    started = time.monotonic()
    next_kill = args.kill_every
    redis_at = None if args.no_redis_restart else args.duration / 2 + 7  # not on a worker kill
    total = int(args.rate * args.duration)
    for n in range(total):
        pause = started + n / args.rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        elapsed = time.monotonic() - started
        if elapsed >= next_kill:
            relay.kill_worker()
            next_kill += args.kill_every
        if redis_at is not None and elapsed >= redis_at:
            threading.Thread(target=relay.restart_redis, daemon=True).start()
            redis_at = None
        event = make_event(n)
        event_id, sent = post_until_acked(api, event, run)
        run.acked += 1
        target = map_event({**event, "id": event_id})
        for sub_id, statements in subs:
            if matches(statements, target):
                run.expected[event_delivery_id(event_id=event_id, sub_id=sub_id)] = sent


def drain(receipts: Receipts, run: Run, timeout: float) -> float:
    """Wait until every expected delivery arrived (or `timeout`); seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if run.expected.keys() <= receipts.delivered().keys():
            break
        time.sleep(1.0)
    return time.monotonic() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def scrape(api: httpx.Client) -> dict[str, float]:
    """The relay's own counters of what happened, from its /metrics, by outcome or status."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(api.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "relay_deliveries_total":
                key = f"deliveries_{sample.labels['outcome']}"
            elif sample.name == "relay_delivery_attempts_total":
                key = f"attempts_{sample.labels['status']}"
            elif sample.name == "relay_events_ingested_total":
                key = "events_ingested"
            else:
                continue
            totals[key] = totals.get(key, 0.0) + sample.value
    return dict(sorted(totals.items()))


def _by_window(run: Run, delivered: dict[str, float]) -> list[int]:
    """Latency p50 (ms) of the events sent in each 10 s of the event phase: where faults hit."""
    start = min(run.expected.values(), default=0.0)
    windows: dict[int, list[float]] = {}
    for delivery_id, sent in run.expected.items():
        if delivery_id in delivered:
            windows.setdefault(int((sent - start) // 10), []).append(delivered[delivery_id] - sent)
    return [round(percentile(windows[w], 0.5) * 1000) for w in sorted(windows)]


def report(
    run: Run,
    receipts: Receipts,
    relay: Relay,
    drained: float,
    args: argparse.Namespace,
    api: httpx.Client,
) -> dict[str, Any]:
    delivered = receipts.delivered()
    duplicates, failed_receipts = receipts.counts()
    lost = sorted(run.expected.keys() - delivered.keys())
    latencies = [delivered[i] - sent for i, sent in run.expected.items() if i in delivered]
    dead = redis.Redis.from_url(relay.redis.url).zcard("relay:dead")
    return {
        "cores": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),  # other work on the machine
        "duration_s": args.duration,
        "rate": args.rate,
        "subscriptions": args.subscriptions,
        "worker_kills": relay.worker_kills,
        "redis_restarts": relay.redis_restarts,
        "crashed_and_restarted": relay.crashes,
        "events_in": run.acked,
        "post_retries": run.post_retries,
        "deliveries_expected": len(run.expected),
        "delivered": len(run.expected.keys() & delivered.keys()),
        "unexpected": len(delivered.keys() - run.expected.keys()),
        "duplicates": duplicates,
        "failed_receipts": failed_receipts,
        "lost": len(lost),
        "lost_examples": lost[:10],
        "dead_in_relay": dead,
        "drain_s": round(drained, 1),
        "latency_p50_ms": round(percentile(latencies, 0.50) * 1000),
        "latency_p99_ms": round(percentile(latencies, 0.99) * 1000),
        "latency_max_ms": round(max(latencies, default=0.0) * 1000),
        "latency_p50_ms_by_10s": _by_window(run, delivered),
        "relay_metrics": scrape(api),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="relay fault soak")
    parser.add_argument("--duration", type=float, default=300.0, help="event phase, seconds")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--subscriptions", type=int, default=4)
    parser.add_argument("--failure-rate", type=float, default=0.2, help="receivers' 500 share")
    parser.add_argument("--kill-every", type=float, default=60.0, help="worker SIGKILL period")
    parser.add_argument("--no-redis-restart", action="store_true", help="leave Redis up")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep logs and data")
    parser.add_argument("--log-level", default="WARNING", help="the relay processes' logs")
    args = parser.parse_args()
    receipts = Receipts()
    servers = [
        start_receiver(receipts, failure_rate=args.failure_rate, seed=n)
        for n in range(args.subscriptions)
    ]
    run = Run()
    with running_relay(args.keep, args.log_level) as relay:
        api = httpx.Client(
            base_url=relay.api, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10
        )
        subs = subscribe(api, [url for url, _ in servers])
        print(f"soak: {args.rate:g} events/s for {args.duration:g}s to {len(subs)} subscriptions")
        drive(api, subs, args, run, relay)
        print(f"soak: {run.acked} events in; draining {len(run.expected)} deliveries")
        drained = drain(receipts, run, args.drain_timeout)
        figures = report(run, receipts, relay, drained, args, api)
    for server in (server for _, server in servers):
        server.shutdown()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if figures["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
