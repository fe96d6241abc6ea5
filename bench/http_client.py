"""Client CPU per webhook POST: workers.http_client.LeanClient vs aiohttp behind the guard.

Issue 13's rule: keep the established client (aiohttp, with a resolver that applies
relay's destination guard) if it costs at most 1.5x the CPU per request of the lean
client, else keep the lean client as the only one. Both clients POST the same signed
webhook (a median-sized Unleash 8.2 fixture event, Standard Webhooks and LaunchDarkly
signature headers) to bench/receiver.py, a separate process answering at once over
keep-alive, with `--in-flight` sends at a time on one asyncio loop (default: the
sender's `delivery_concurrency`). Both go through the guard: the URL names `localhost`,
private destinations are refused and only 127.0.0.1/32 is allowed, so each client
resolves and vets the host at connect time and caches the answer (30 s). Both keep the
sender's bounds: a total and a connect timeout, no redirects, no decoding, at most
`delivery_max_response_bytes` read. `time.process_time` of this process (every thread,
resolver threads included) is the client's own CPU; each round runs the two clients
alternately after a warm-up, and the figures are medians of `--runs` rounds.

    pip install -e '.[bench]'   # aiohttp is a bench-only dependency
    python bench/http_client.py [--requests 4000] [--in-flight 256] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from relay.cli.embedded_redis import free_port  # noqa: E402
from relay.destinations import resolve_allowed  # noqa: E402
from relay.settings import Settings  # noqa: E402
from workers.delivery.signing import sign  # noqa: E402
from workers.http_client import RECORDED_BODY_BYTES, LeanClient, SendResult  # noqa: E402
from workers.http_client import parse_retry_after as retry_after_of  # noqa: E402

RULE = 1.5  # issue 13: aiohttp is kept if within this many times lean's CPU per request
SETTINGS = Settings(allow_private_destinations=False, allowed_destination_cidrs=["127.0.0.1/32"])
FIXTURE = (
    ROOT
    / "tests"
    / "data"
    / "shared"
    / "fixtures"
    / "unleash"
    / "unleash-8.2.0-events-sample.jsonl"
)
WARM_UP = 300  # sends before each measured run: connections opened, host resolved

Send = Callable[[str], Awaitable[SendResult]]


def webhook() -> tuple[bytes, dict[str, str]]:
    """A median-sized fixture event and the headers the sender signs it with."""
    lines = sorted(FIXTURE.read_bytes().splitlines(), key=len)
    body = lines[len(lines) // 2]
    headers = sign(msg_id="dlv_1_bench", timestamp=1700000000, body=body, secrets=["whsec_MfKQ"])
    return body, headers


BODY, HEADERS = webhook()


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver seam with relay's guard: every address vetted, or the connect fails.

    aiohttp does not call a resolver for a URL naming an IP address; adopting aiohttp would
    need that case vetted before the request too (the bench's URL names a host).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await asyncio.get_running_loop().run_in_executor(
            None, lambda: resolve_allowed(host, port, settings=self._settings)
        )
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        pass


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


async def run_lean(url: str, requests: int, in_flight: int) -> tuple[float, float]:
    client = LeanClient(SETTINGS)

    async def send(target: str) -> SendResult:
        return await client.send(url=target, body=BODY, headers=HEADERS)

    try:
        await measure(send, url, WARM_UP, in_flight)
        return await measure(send, url, requests, in_flight)
    finally:
        await client.aclose()


async def run_aiohttp(url: str, requests: int, in_flight: int) -> tuple[float, float]:
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(SETTINGS),
        limit=SETTINGS.delivery_concurrency,
        limit_per_host=0,
        ttl_dns_cache=30,
        keepalive_timeout=5.0,
    )
    timeout = aiohttp.ClientTimeout(
        total=SETTINGS.delivery_timeout, connect=SETTINGS.delivery_connect_timeout
    )
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),  # as the lean client: no cookies between sends
        headers={"user-agent": "relay/bench", "accept-encoding": "identity"},
    )

    async def send(target: str) -> SendResult:
        started = time.perf_counter()
        async with session.post(
            target,
            data=BODY,
            headers={**HEADERS, "content-type": "application/json"},
            allow_redirects=False,
        ) as response:
            body = bytearray()
            while len(body) < SETTINGS.delivery_max_response_bytes:
                chunk = await response.content.readany()
                if not chunk:
                    break
                body += chunk
            return SendResult(
                status_code=response.status,
                duration_ms=(time.perf_counter() - started) * 1000,
                response_body=bytes(body[:RECORDED_BODY_BYTES]).decode("utf-8", "replace"),
                retry_after=retry_after_of(response.headers.get("retry-after")),
            )

    try:
        await measure(send, url, WARM_UP, in_flight)
        return await measure(send, url, requests, in_flight)
    finally:
        await session.close()


def wait_until_up(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the receiver did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--in-flight", type=int, default=SETTINGS.delivery_concurrency)
    parser.add_argument("--runs", type=int, default=7)
    arguments = parser.parse_args()
    port = free_port()
    command = [sys.executable, str(ROOT / "bench" / "receiver.py"), "--port", str(port)]
    receiver = subprocess.Popen(command)
    try:
        wait_until_up(port)
        url = f"http://localhost:{port}/fast"
        clients = {"lean": run_lean, "aiohttp": run_aiohttp}
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        for _ in range(arguments.runs):
            for name, client in clients.items():
                figures[name].append(
                    asyncio.run(client(url, arguments.requests, arguments.in_flight))
                )
    finally:
        receiver.terminate()
        receiver.wait(10)
    report(figures, arguments)


def report(figures: dict[str, list[tuple[float, float]]], arguments: argparse.Namespace) -> None:
    cpu = {name: statistics.median(c for c, _ in runs) for name, runs in figures.items()}
    rate = {name: statistics.median(r for _, r in runs) for name, runs in figures.items()}
    print(
        f"{arguments.requests} POSTs of {len(BODY)} bytes, {arguments.in_flight} in flight,"
        f" keep-alive, median of {arguments.runs} rounds (aiohttp {aiohttp.__version__})"
    )
    for name, runs in figures.items():
        shown = ", ".join(f"{c:.3f}" for c, _ in runs)
        print(
            f"{name:8} client CPU {cpu[name]:.3f} ms/POST (rounds: {shown});"
            f" {rate[name]:6.0f} POSTs/s"
        )
    ratio = cpu["aiohttp"] / cpu["lean"]
    verdict = "keep aiohttp" if ratio <= RULE else "keep workers/http_client.py"
    print(f"aiohttp / lean CPU per POST = {ratio:.2f}x (rule: <= {RULE}x keeps aiohttp): {verdict}")


if __name__ == "__main__":
    main()
