"""Benchmark: `POST /api/events` against a FastAPI app that only validates the same model.

    .venv/bin/python bench/ingest.py [--rounds 4] [--seconds 3] [--connections 16]
    .venv/bin/python bench/ingest.py --replicas [--rounds 4] ...

Starts an embedded Redis in a temp dir, the relay API (uvicorn, one process, a real
ingest token, so every request is authenticated, recorded in Redis and queued for
fan-out) and the baseline app (the same uvicorn settings) with two endpoints that do
nothing but validate the body with the same pydantic model
(relay.ingest.unleash_event.UnleashEvent):

- `baseline`: the FastAPI way, the model declared as the endpoint's body parameter;
- `baseline-raw`: the body read as bytes and validated in one pass, as the relay does
  (a stricter floor: no FastAPI body handling at all).

Then, in rounds alternating the order, it measures single-event POSTs/s and batches of
100 (events/s) against each with the same client: N keep-alive connections on asyncio,
each sending a request and reading the answer in a loop. The client is a few lines of
raw HTTP/1.1 rather than httpx: the machine has two cores, and a heavy client would take
the CPU the servers need. Besides rates it reports each server's CPU time per request
(from /proc), which other load on the machine moves far less than rates. Prints medians
and the relay/baseline ratios.

`--replicas` measures the write concern's cost instead: a primary with one replica (and
the two sentinels tests/redis_topology.py needs for a quorum; they only ping), and two
relay servers on that same primary, one with RELAY_REDIS_MIN_REPLICAS=0 and one with =1
(each group commit of the ingest writer then ends with a WAIT for the replica). The
rounds alternate the two as above; it prints medians, the WAITs Redis ran per request
and the min-replicas 1 / 0 ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

ROOT = Path(__file__).resolve().parents[1]
# run as a script, bench/ comes first on sys.path, where bench/policies.py would shadow the package
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import Body, FastAPI, Request, Response  # noqa: E402

from relay.ingest.unleash_event import UnleashEvent, parse_events  # noqa: E402

if TYPE_CHECKING:
    from relay.store.client import Redis

FIXTURES = (
    ROOT
    / "tests"
    / "data"
    / "shared"
    / "fixtures"
    / "unleash"
    / "unleash-8.2.0-events-sample.jsonl"
)
BATCH = 100
TARGET_SINGLE_RATIO = 0.5
TARGET_BATCH_EVENTS = 20_000
REPLICA_MODES = (0, 1)  # RELAY_REDIS_MIN_REPLICAS of the two servers of --replicas


def baseline_app() -> FastAPI:
    """The floor: HTTP + validation of the same model; no auth, no Redis, no fan-out."""
    app = FastAPI()

    def accepted(count: int) -> Response:
        return Response(json.dumps({"ids": list(range(count))}), 202, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/events", status_code=202)
    async def ingest(events: Annotated[UnleashEvent | list[UnleashEvent], Body()]) -> Response:
        return accepted(len(events) if isinstance(events, list) else 1)

    @app.post("/raw/events", status_code=202)
    async def ingest_raw(request: Request) -> Response:
        return accepted(len(parse_events(await request.body())))

    return app


def serve(kind: str, port: int) -> None:
    """Run one server in this process (called in a child process)."""
    if kind == "relay":
        from relay.api.app import create_app

        app = create_app()
    else:
        app = baseline_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class Target:
    name: str
    server: Server
    path: str


def start_server(kind: str, env: dict[str, str]) -> Server:
    from relay.cli.embedded_redis import free_port

    port = free_port()
    command = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return Server(port, process)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{kind} server did not start")


class Bodies:
    """Request bodies with producer ids never used before (so dedupe never short-cuts)."""

    def __init__(self) -> None:
        event = json.loads(FIXTURES.read_text().splitlines()[10])
        event.pop("id")
        self.tail = b"," + json.dumps(event, separators=(",", ":"))[1:].encode()
        self.next_id = 1

    def single(self) -> bytes:
        self.next_id += 1
        return b'{"id":%d%s' % (self.next_id, self.tail)

    def batch(self) -> bytes:
        return b"[" + b",".join(self.single() for _ in range(BATCH)) + b"]"


async def _connection(
    port: int, request_head: bytes, make_body: Callable[[], bytes], stop_at: float
) -> tuple[int, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = failed = 0
    try:
        while time.perf_counter() < stop_at:
            body = make_body()
            writer.write(b"%scontent-length: %d\r\n\r\n%s" % (request_head, len(body), body))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if head[9:12] == b"202":
                done += 1
            else:
                failed += 1
    finally:
        writer.close()
    return done, failed


async def _load(
    port: int, request_head: bytes, make_body: Callable[[], bytes], seconds: float, n: int
) -> tuple[int, int, float]:
    start = time.perf_counter()
    stop_at = start + seconds
    results = await asyncio.gather(
        *(_connection(port, request_head, make_body, stop_at) for _ in range(n))
    )
    elapsed = time.perf_counter() - start
    return sum(done for done, _ in results), sum(failed for _, failed in results), elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    rate: float  # requests/s (single) or events/s (batch)
    cpu_us: float  # server CPU per request, microseconds
    redis_cpu_us: float  # Redis CPU per request (only the relay uses Redis)
    waits: float = 0.0  # WAIT commands Redis ran per request (--replicas only)


@dataclass(frozen=True)
class Load:
    token: str
    bodies: Bodies
    seconds: float
    connections: int
    redis_pid: int
    count_waits: Callable[[], int] | None = None  # WAITs the primary has run so far


def measure(target: Target, load: Load, *, batch: bool, seconds: float | None = None) -> Run:
    """One timed run; fails loudly on any answer but 202."""
    request_head = (
        b"POST %s HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
        b"authorization: %s\r\n" % (target.path.encode(), load.token.encode())
    )
    make_body = load.bodies.batch if batch else load.bodies.single
    pid = target.server.process.pid
    count_waits = load.count_waits or (lambda: 0)
    waits_before = count_waits()
    cpu_before, redis_before = cpu_seconds(pid), cpu_seconds(load.redis_pid)
    done, failed, elapsed = asyncio.run(
        _load(
            target.server.port, request_head, make_body, seconds or load.seconds, load.connections
        )
    )
    cpu, redis_cpu = cpu_seconds(pid) - cpu_before, cpu_seconds(load.redis_pid) - redis_before
    waits = count_waits() - waits_before
    if failed:
        raise RuntimeError(f"{target.name}: {failed} requests were not answered 202")
    per_request = 1e6 / max(done, 1)
    return Run(
        done / elapsed * (BATCH if batch else 1),
        cpu * per_request,
        redis_cpu * per_request,
        waits / max(done, 1),
    )


def create_ingest_token(redis_url: str) -> str:
    from relay.store.client import connect
    from relay.store.tokens import Role, create_token

    _, secret = create_token(connect(redis_url), name="bench", role=Role.INGEST)
    return secret


def run(args: argparse.Namespace) -> dict[str, list[Run]]:
    from relay.cli.embedded_redis import start_redis

    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        redis_server = start_redis(Path(tmp) / "redis")
        env = {**os.environ, "RELAY_REDIS_URL": redis_server.url, "PYTHONPATH": str(ROOT)}
        env["RELAY_DATA_DIR"] = str(Path(tmp) / "data")
        servers: list[Server] = []
        try:
            load = Load(
                create_ingest_token(redis_server.url),
                Bodies(),
                args.seconds,
                args.connections,
                redis_server.process.pid,
            )
            servers = [start_server("baseline", env), start_server("relay", env)]
            targets = [
                Target("baseline", servers[0], "/api/events"),
                Target("baseline-raw", servers[0], "/raw/events"),
                Target("relay", servers[1], "/api/events?source=bench"),
            ]
            return _rounds(targets, load, redis_server.url, args.rounds)
        finally:
            for server in servers:
                server.stop()
            redis_server.stop()


def _rounds(targets: list[Target], load: Load, redis_url: str, rounds: int) -> dict[str, list[Run]]:
    from relay.store.client import connect

    runs: dict[str, list[Run]] = {}
    for _ in range(2):  # warm-up: imports, connection pools, script cache
        for target in targets:
            measure(target, load, batch=False, seconds=0.5)
    for round_number in range(rounds):
        # alternate the order, so that no target always runs while the machine is busier
        for target in targets if round_number % 2 == 0 else targets[::-1]:
            for batch in (False, True):
                name = f"{target.name} {'batch' if batch else 'single'}"
                runs.setdefault(name, []).append(measure(target, load, batch=batch))
        connect(redis_url).delete("celery")  # no worker drains the fan-out queue here
    return runs


def run_replicas(args: argparse.Namespace) -> dict[str, list[Run]]:
    """The --replicas mode: one primary with one replica, relay servers with
    RELAY_REDIS_MIN_REPLICAS=0 and =1 on it, measured in alternating rounds."""
    from relay.store.client import connect
    from tests.redis_topology import RedisTopology

    # two sentinels: the fewest the harness starts (a quorum); nothing here asks them
    with (
        tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp,
        RedisTopology(Path(tmp) / "redis", replicas=1, sentinels=2) as topology,
    ):
        primary = topology.primary()
        stats = connect(primary.url)
        servers: list[Server] = []
        try:
            load = Load(
                create_ingest_token(primary.url),
                Bodies(),
                args.seconds,
                args.connections,
                primary.process.pid,
                functools.partial(wait_calls, stats),
            )
            for min_replicas in REPLICA_MODES:
                env = {**os.environ, "RELAY_REDIS_URL": primary.url, "PYTHONPATH": str(ROOT)}
                env["RELAY_DATA_DIR"] = str(Path(tmp) / f"data-{min_replicas}")
                env["RELAY_REDIS_MIN_REPLICAS"] = str(min_replicas)
                servers.append(start_server("relay", env))
            targets = [
                Target(f"min-replicas {n}", server, "/api/events?source=bench")
                for n, server in zip(REPLICA_MODES, servers, strict=True)
            ]
            return _rounds(targets, load, primary.url, args.rounds)
        finally:
            for server in servers:
                server.stop()
            stats.close()


def wait_calls(client: Redis) -> int:
    """How many WAIT commands the Redis of `client` has run since it started."""
    stats: dict[str, Any] = client.info("commandstats").get("cmdstat_wait", {"calls": 0})
    return int(stats["calls"])


def print_medians(runs: dict[str, list[Run]]) -> Callable[[str, str], float]:
    """Print each target's medians and runs; the median of a target's field, for ratios."""

    def median(name: str, field: str) -> float:
        return statistics.median(float(getattr(run, field)) for run in runs[name])

    print("\nmedians over rounds (each run: fixed time, the same keep-alive client)")
    for name, values in sorted(runs.items()):
        unit = "events/s" if "batch" in name else "requests/s"
        shown = ", ".join(f"{r.rate:,.0f}" for r in values)
        waits = f", WAITs {median(name, 'waits'):.2f}" if median(name, "waits") else ""
        print(
            f"  {name:20} {median(name, 'rate'):>9,.0f} {unit:10}  CPU per request: server "
            f"{median(name, 'cpu_us'):>6,.0f} us, Redis {median(name, 'redis_cpu_us'):>5,.0f} us"
            f"{waits}   runs: {shown}"
        )
    return median


def report_replicas(runs: dict[str, list[Run]]) -> None:
    """Medians, and what min-replicas 1 costs against 0 (rates and CPU, as ratios)."""
    median = print_medians(runs)
    for kind in ("single", "batch"):
        on, off = f"min-replicas 1 {kind}", f"min-replicas 0 {kind}"
        rate = median(on, "rate") / median(off, "rate")
        cpu = median(on, "cpu_us") / median(off, "cpu_us")
        redis_cpu = median(on, "redis_cpu_us") / median(off, "redis_cpu_us")
        # each round's own ratio too: its two runs saw the same load on the machine
        per_round = [a.rate / b.rate for a, b in zip(runs[on], runs[off], strict=True)]
        shown = ", ".join(f"{ratio:.2f}" for ratio in per_round)
        print(
            f"  min-replicas 1/0, {kind}: rate {rate:.2f} (median of the rounds' ratios "
            f"{statistics.median(per_round):.2f}: {shown}); CPU per request: server "
            f"{cpu:.2f}, Redis {redis_cpu:.2f}"
        )


def report(runs: dict[str, list[Run]]) -> None:
    median = print_medians(runs)
    for baseline in ("baseline", "baseline-raw"):
        single = median("relay single", "rate") / median(f"{baseline} single", "rate")
        batch = median("relay batch", "rate") / median(f"{baseline} batch", "rate")
        cpu = median(f"{baseline} single", "cpu_us") / median("relay single", "cpu_us")
        print(
            f"  relay/{baseline}: single-event rate {single:.2f} (target >= "
            f"{TARGET_SINGLE_RATIO}), batch rate {batch:.2f}; "
            f"server CPU per single request {cpu:.2f}"
        )
    batch_rate = median("relay batch", "rate")
    print(f"  relay batches of {BATCH}: {batch_rate:,.0f} events/s (target >= 20,000)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--replicas",
        action="store_true",
        help="the write concern's cost: RELAY_REDIS_MIN_REPLICAS=0 against =1, one primary",
    )
    parser.add_argument("--serve", choices=["relay", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    started = time.monotonic()
    if args.replicas:
        report_replicas(run_replicas(args))
    else:
        report(run(args))
    print(f"  total time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
