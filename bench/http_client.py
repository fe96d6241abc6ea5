"""Client CPU per async webhook POST: httpx.AsyncClient vs workers.http_client.LeanClient.

httpx is measured twice: one client whose pool holds every connection, and the way the
worker's LoopSender used it before LeanClient (pools of 4 connections, each send to the
least busy one: httpcore's pool does work proportional to its size per request). The
clients POST the same signed-size JSON body `--requests` times with `--in-flight`
concurrent sends on one asyncio loop to bench/receiver.py (a separate process answering
at once, keep-alive), so `time.process_time` of this process is the client's own CPU.
Figures are medians of `--runs` runs, the two clients alternating.

    python bench/http_client.py [--requests 2000] [--in-flight 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from relay.cli.embedded_redis import free_port  # noqa: E402
from relay.settings import Settings  # noqa: E402
from workers.http import SendResult, build_async_client, send_async  # noqa: E402
from workers.http_client import LeanClient  # noqa: E402

SETTINGS = Settings(allow_private_destinations=True, delivery_concurrency=100)
BODY = json.dumps({"id": 1, "type": "feature-updated", "data": {"name": "x" * 400}}).encode()
HEADERS = {
    "webhook-id": "msg_1_bench",
    "webhook-timestamp": "1700000000",
    "webhook-signature": "v1,x",
}

SHARD = 4  # connections per httpx client in the sharded variant
Send = Callable[[str], Awaitable[SendResult]]


async def measure(send: Send, url: str, requests: int, in_flight: int) -> tuple[float, float]:
    """(CPU ms per POST, POSTs per second) for `requests` sends, `in_flight` at a time."""
    slots = asyncio.Semaphore(in_flight)

    async def one(_: int) -> None:
        async with slots:
            result = await send(url)
            assert result.status_code == 200, result

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(requests)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu * 1000 / requests, requests / wall


async def run_httpx(url: str, requests: int, in_flight: int) -> tuple[float, float]:
    async with build_async_client(SETTINGS) as client:

        async def send(target: str) -> SendResult:
            return await send_async(
                client, url=target, body=BODY, headers=HEADERS, settings=SETTINGS
            )

        await measure(send, url, 200, in_flight)  # warm-up: connections opened
        return await measure(send, url, requests, in_flight)


async def run_httpx_sharded(url: str, requests: int, in_flight: int) -> tuple[float, float]:
    settings = SETTINGS.model_copy(update={"delivery_concurrency": SHARD})
    shards = [build_async_client(settings) for _ in range(-(-in_flight // SHARD))]
    busy = [0] * len(shards)

    async def send(target: str) -> SendResult:
        index = min(range(len(shards)), key=busy.__getitem__)
        busy[index] += 1
        try:
            return await send_async(
                shards[index], url=target, body=BODY, headers=HEADERS, settings=SETTINGS
            )
        finally:
            busy[index] -= 1

    try:
        await measure(send, url, 200, in_flight)
        return await measure(send, url, requests, in_flight)
    finally:
        for client in shards:
            await client.aclose()


async def run_lean(url: str, requests: int, in_flight: int) -> tuple[float, float]:
    client = LeanClient(SETTINGS)

    async def send(target: str) -> SendResult:
        return await client.send(url=target, body=BODY, headers=HEADERS)

    try:
        await measure(send, url, 200, in_flight)
        return await measure(send, url, requests, in_flight)
    finally:
        await client.aclose()


def wait_until_up(url: str) -> None:
    for _ in range(100):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the receiver did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    port = free_port()
    command = [sys.executable, str(ROOT / "bench" / "receiver.py"), "--port", str(port)]
    receiver = subprocess.Popen(command)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/count")
        url = f"http://127.0.0.1:{port}/fast"
        clients = {"httpx": run_httpx, "httpx-sharded": run_httpx_sharded, "lean": run_lean}
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        for _ in range(arguments.runs):
            for name, client in clients.items():
                figures[name].append(
                    asyncio.run(client(url, arguments.requests, arguments.in_flight))
                )
    finally:
        receiver.terminate()
        receiver.wait(10)
    cpu = {name: statistics.median(c for c, _ in runs) for name, runs in figures.items()}
    rate = {name: statistics.median(r for _, r in runs) for name, runs in figures.items()}
    print(
        f"{arguments.requests} POSTs, {arguments.in_flight} in flight,"
        f" median of {arguments.runs} runs"
    )
    for name, runs in figures.items():
        shown = ", ".join(f"{c:.3f}" for c, _ in runs)
        print(
            f"{name:13} client CPU {cpu[name]:.3f} ms/POST (runs: {shown});"
            f" {rate[name]:7.0f} POSTs/s"
        )
    for name in ("httpx", "httpx-sharded"):
        print(f"{name} / lean CPU per POST = {cpu[name] / cpu['lean']:.2f}x")


if __name__ == "__main__":
    main()
