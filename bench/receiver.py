"""A webhook receiver for benchmarks: asyncio, keep-alive, answers after a delay per path.

`POST /slow` (and `/slow/<anything>`) answers 200 after `--delay` seconds (a typical slow
receiver), any other POST at once. Every POST is recorded as (id, arrival time), the id
being its `webhook-id`, or `<path>#<n>` (n counting POSTs) for a request without one, as an
integration's (Slack's) is; `GET /count` and `GET /dump` report them, `POST /reset`
forgets them. Many connections are served concurrently by one process, so the receiver
is never the bottleneck being measured.

    python bench/receiver.py --port 8765 --delay 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class Recorder:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrivals: list[tuple[str, float]] = []
        self.posts = 0  # never reset: an id is unique for the receiver's life

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, headers = _parse(head)
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                writer.write(await self._answer(method, path, headers, body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if method == "GET" and path == "/count":
            return _json({"count": len(self.arrivals)})
        if method == "GET" and path == "/dump":
            return _json(self.arrivals)
        if method == "POST" and path == "/reset":
            self.arrivals = []
            return _OK
        self.posts += 1
        arrival_id = headers.get("webhook-id") or f"{path}#{self.posts}"
        self.arrivals.append((arrival_id, time.time()))
        if path == "/slow" or path.startswith("/slow/"):
            await asyncio.sleep(self.delay)
        return _OK


def _parse(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return method, path, headers


def _json(document: object) -> bytes:
    body = json.dumps(document).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nContent-Type: application/json\r\n\r\n"
    )
    return head.encode() + body


async def main(port: int, delay: float) -> None:
    recorder = Recorder(delay)
    server = await asyncio.start_server(recorder.serve, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.1)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.delay))
