"""Isolation benchmark: fast subscriptions' latency next to a subscription whose receiver hangs.

The stack of bench/delivery.py (embedded Redis, one API process, one worker process with
beat, the asyncio receiver) with the relay's default delivery settings. Five fast
subscriptions point at a receiver that answers at once; their policy takes the `default`
project. Measured in the same run, ingest -> first attempt at the receiver, one event
per POST at `--rate` events/s:

  without   the five fast subscriptions alone
  with      the same, after a sixth subscription was added whose receiver answers after
            `--hang` seconds (longer than RELAY_DELIVERY_TIMEOUT, so every send times
            out) and `--pending` events were posted that only it takes (project
            `neighbour`); it also takes every event of the measured phase

Target: p99 with the neighbour <= 250 ms and <= 3 x the p99 without.

    python bench/isolation.py [--rate 10] [--seconds 30] [--pending 500] [--hang 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import delivery as bench  # bench/delivery.py: the stack and the load driver

from relay.cli.embedded_redis import free_port

FAST = bench.SUBSCRIPTIONS
TARGET_P99_MS = 250.0
TARGET_RATIO = 3.0
FAST_POLICY = [{"effect": "allow", "resources": ["proj/default:env/*:flag/*"], "actions": ["*"]}]


def subscribe(api: httpx.Client, name: str, url: str, statements: list[Any] | None) -> str:
    body: dict[str, Any] = {"name": name, "config": {"url": url, "format": "unleash"}, "on": True}
    if statements is not None:
        body["statements"] = statements
    response = api.post("/api/v2/integrations/webhook", json=body)
    response.raise_for_status()
    sub_id: str = response.json()["_id"]
    return sub_id


def neighbour_event(index: int) -> dict[str, Any]:
    return {**bench.event(index), "project": "neighbour"}


def measure(stack: bench.Stack, rate: float, seconds: float) -> list[float]:
    """Ingest -> first arrival (ms) of every fast delivery of `rate` events/s for `seconds`."""
    stack.probe.post(f"{stack.receiver}/reset")
    total = int(rate * seconds)
    sent, _ = asyncio.run(bench._drive(stack.api_port, rate, total))
    bench.wait_for_deliveries(stack, total * FAST)
    first: dict[str, float] = {}
    for webhook_id, arrived in bench.receiver_dump(stack):
        first[webhook_id] = min(arrived, first.get(webhook_id, arrived))
    return [(at - sent[int(webhook_id.split("_")[1])]) * 1000 for webhook_id, at in first.items()]


def add_neighbour(api: httpx.Client, stack: bench.Stack, pending: int, hang: float) -> str:
    """A subscription to a receiver answering after `hang` s, with `pending` deliveries."""
    port = free_port()
    command = [sys.executable, str(bench.ROOT / "bench/receiver.py"), "--port", str(port)]
    stack.spawn("hanging-receiver", [*command, "--delay", str(hang)])
    bench._wait_http(f"http://127.0.0.1:{port}/count")
    sub_id = subscribe(api, "neighbour", f"http://127.0.0.1:{port}/slow", None)
    for start in range(0, pending, 100):
        batch = [neighbour_event(i) for i in range(start, min(pending, start + 100))]
        api.post("/api/events", json=batch).raise_for_status()
    deadline = time.monotonic() + 30
    while _count(stack, port) == 0:  # its sends are in flight: the neighbour holds slots
        if time.monotonic() > deadline:
            raise RuntimeError("the hanging receiver got nothing")
        time.sleep(0.1)
    return sub_id


def _count(stack: bench.Stack, port: int) -> int:
    return int(stack.probe.get(f"http://127.0.0.1:{port}/count").json()["count"])


def report(without: list[float], with_: list[float], neighbour: dict[str, Any]) -> list[str]:
    p = bench.percentile
    p99_without, p99_with = p(without, 0.99), p(with_, 0.99)
    ratio = p99_with / p99_without
    met = p99_with <= TARGET_P99_MS and ratio <= TARGET_RATIO
    return [
        f"fast subscriptions alone:      {len(without)} deliveries, p50 {p(without, 0.5):.0f} ms,"
        f" p99 {p99_without:.0f} ms (mean {statistics.fmean(without):.0f} ms)",
        f"next to a hanging neighbour:   {len(with_)} deliveries, p50 {p(with_, 0.5):.0f} ms,"
        f" p99 {p99_with:.0f} ms (mean {statistics.fmean(with_):.0f} ms)",
        f"p99 with / without: {ratio:.2f}  (target p99 <= {TARGET_P99_MS:.0f} ms and <="
        f" {TARGET_RATIO:.0f}x) {bench._verdict(met)}",
        f"the neighbour's _status at the end: {neighbour}",
    ]


def run(arguments: argparse.Namespace) -> list[str]:
    with bench.running_stack() as stack:
        api = httpx.Client(base_url=stack.api, headers={"Authorization": bench.ADMIN}, timeout=30)
        for n in range(FAST):
            subscribe(api, f"fast-{n}", f"{stack.receiver}/fast", FAST_POLICY)
        measure(stack, arguments.rate, 3)  # warm-up: connections, subscription index
        without = measure(stack, arguments.rate, arguments.seconds)
        sub_id = add_neighbour(api, stack, arguments.pending, arguments.hang)
        with_ = measure(stack, arguments.rate, arguments.seconds)
        status = api.get(f"/api/v2/integrations/webhook/{sub_id}").json()["_status"]
        status.pop("errors", None)
        lines = [
            f"machine: {os.cpu_count()} cores, load average"
            f" {os.getloadavg()[0]:.1f} at the end; {FAST} fast subscriptions at"
            f" {arguments.rate:.0f} events/s for {arguments.seconds:.0f} s per phase;"
            f" neighbour: {arguments.pending} pending, receiver answers after"
            f" {arguments.hang:.0f} s",
            *report(without, with_, status),
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="relay isolation benchmark")
    parser.add_argument("--rate", type=float, default=10.0, help="events/s of each phase")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--pending", type=int, default=500, help="the neighbour's backlog")
    parser.add_argument("--hang", type=float, default=40.0, help="its receiver's delay (s)")
    print("\n".join(run(parser.parse_args())))


if __name__ == "__main__":
    main()
