"""Reading an Unleash server's event search (`GET /api/admin/search/events`), newest first.

A pull is held to a webhook delivery's bounds, over the same network layer
(`workers.connections`, under `workers.http`):

- connections go only to addresses the destination guard vetted: the host is resolved
  once, every address is checked, and the socket opens to a checked address (no DNS
  rebinding between check and connect); redirects are never followed;
- one deadline, `pull_timeout`, covers the whole request, so a server trickling a byte a
  second cannot hold a worker past it;
- the body is read as it arrives and decoded here, not by httpx: gzip and deflate (the
  encodings asked for) are inflated at most `INFLATE_STEP` bytes per call, and the page is
  refused as soon as its decoded bytes pass `pull_max_page_bytes`, or its compressed
  bytes do (a stream that inflates to nothing is cut too). Any other content-encoding
  (br, zstd, several stacked) is refused, never decoded. Measured: a 200 MB page, or
  0.5 MB of gzip inflating to 500 MB, raised the worker's RSS by 400 MB and 950 MB when
  read whole; cut at the 32 MiB default, well under 64 MB (tests/workers/pull/test_pull_hostile.py).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any, Final

import httpx
from pydantic_core import from_json

import relay
from relay.destinations import GUARD_HINT, DestinationError, UnresolvableHostError
from relay.settings import Settings
from relay.store.sources import PullSource
from workers.connections import deadline, guarded_transport
from workers.errors import WorkerError

__all__ = ["PullError", "PullRefusedError", "SearchPage", "build_client", "fetch_page"]

SEARCH_PATH: Final = "/api/admin/search/events"
ACCEPT_ENCODING: Final = "gzip, deflate"
INFLATE_STEP: Final = 1024 * 1024  # most bytes one decompression call may produce
ERROR_BODY_CHARS: Final = 200  # of a refusing server's answer kept in the error
_DECODED = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


class PullError(WorkerError):
    """An Unleash server could not be read: unreachable, refused, or answered nonsense."""


class PullRefusedError(PullError):
    """The destination guard refused the source's address: a setup problem, not a blip."""


@dataclass(frozen=True)
class SearchPage:
    """One page of Unleash's event search: raw event objects, newest first, and the total."""

    events: list[Any]
    total: int | None  # None when the server did not say


def build_client(settings: Settings) -> httpx.Client:
    """A client for pulls: guarded connections, explicit timeouts, no redirects, no env proxy."""
    return httpx.Client(
        transport=guarded_transport(settings),
        timeout=httpx.Timeout(settings.pull_timeout, connect=settings.pull_connect_timeout),
        follow_redirects=False,
        trust_env=False,  # a proxy from the environment would bypass the destination guard
        headers={
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": f"relay/{relay.__version__}",
        },
    )


def fetch_page(
    http: httpx.Client, *, source: PullSource, offset: int, limit: int, settings: Settings
) -> SearchPage:
    """Events `offset` to `offset + limit` of `source`'s search, newest first."""
    url = f"{source.url}{SEARCH_PATH}"
    params = {"offset": str(offset), "limit": str(limit)}
    ends_at = time.monotonic() + settings.pull_timeout
    try:
        with (
            deadline(ends_at),
            http.stream("GET", url, params=params, headers={"Authorization": source.token}) as r,
        ):
            body = _read_page(r, source=source, settings=settings, ends_at=ends_at)
    except UnresolvableHostError as exc:
        raise PullError(f"{_who(source)}: {exc.reason}") from exc
    except DestinationError as exc:
        raise PullRefusedError(
            f"{_who(source)}: destination refused: {exc.reason}; {GUARD_HINT}"
        ) from exc
    except httpx.TimeoutException as exc:
        raise PullError(_timed_out(source, settings)) from exc
    except httpx.HTTPError as exc:
        raise PullError(f"{_who(source)}: cannot read {url}: {exc!r}") from exc
    return _page(source, body)


def _read_page(
    response: httpx.Response, *, source: PullSource, settings: Settings, ends_at: float
) -> bytes:
    if response.status_code != 200:
        raise PullError(f"{_who(source)}: {source.url}{SEARCH_PATH} {_refusal(response)}")
    body = _Body(_encoding(response, source), settings.pull_max_page_bytes)
    try:
        for chunk in response.iter_raw():
            body.feed(chunk)
            if time.monotonic() >= ends_at:
                raise PullError(_timed_out(source, settings))
        return body.finish()
    except _BadBodyError as exc:
        raise PullError(f"{_who(source)}: {exc}") from exc


def _page(source: PullSource, body: bytes) -> SearchPage:
    try:
        # pydantic-core's parser, not json.loads: nesting is bounded (no RecursionError)
        parsed = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise PullError(f"{source.name}: event search did not answer JSON: {exc}") from exc
    events = parsed.get("events") if isinstance(parsed, dict) else None
    total = parsed.get("total") if isinstance(parsed, dict) else None
    if not isinstance(events, list):
        raise PullError(f"{source.name}: event search answer has no `events` array")
    if not isinstance(total, int) or isinstance(total, bool):
        total = None
    return SearchPage(events=events, total=total)


class _BadBodyError(Exception):
    """A page body refused while reading it (too large, or not validly compressed)."""


class _Body:
    """A page's decoded bytes, refused past `limit` bytes decoded or received."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.encoding = encoding
        self.received = 0
        self.data = bytearray()
        self.head = b""  # deflate: the first bytes, until they tell zlib from raw
        self.inflater: Any = None  # zlib's Decompress (not exported as a type)
        if encoding == "gzip":
            self.inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def feed(self, chunk: bytes) -> None:
        if self.encoding == "identity":
            self._keep(chunk)
            return
        self.received += len(chunk)
        if self.received > self.limit:
            raise _BadBodyError(f"a page is too large: over {self.limit} bytes compressed")
        if self.inflater is None:  # deflate, undecided
            self.head += chunk
            if len(self.head) < 2:
                return
            chunk, self.head = self.head, b""
            self.inflater = zlib.decompressobj(zlib.MAX_WBITS if _zlib_header(chunk) else -15)
        self._inflate(chunk)

    def finish(self) -> bytes:
        if self.encoding != "identity":
            if self.inflater is None:
                raise _BadBodyError(
                    f"a {self.encoding} body of {len(self.head)} bytes is not valid"
                )
            self._inflate(b"")  # output zlib still holds
            if not self.inflater.eof:
                raise _BadBodyError(f"the {self.encoding} body ends before its end of stream")
        return bytes(self.data)

    def _inflate(self, data: bytes) -> None:
        # bytes after the end of the stream (unused_data) are ignored
        while not self.inflater.eof:
            step = min(self.limit - len(self.data) + 1, INFLATE_STEP)
            try:
                out = self.inflater.decompress(data, step)
            except zlib.error as exc:
                raise _BadBodyError(f"the {self.encoding} body is not valid: {exc}") from exc
            self._keep(out)
            data = self.inflater.unconsumed_tail
            if not data and len(out) < step:
                return

    def _keep(self, data: bytes) -> None:
        if len(self.data) + len(data) > self.limit:
            raise _BadBodyError(f"a page is too large: over {self.limit} bytes")
        self.data += data


def _zlib_header(head: bytes) -> bool:
    """Whether a deflate body is zlib-wrapped (RFC 1950), as HTTP says, or raw (as some send)."""
    return head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


def _encoding(response: httpx.Response, source: PullSource) -> str:
    codings = [
        coding.strip().lower()
        for coding in response.headers.get("content-encoding", "").split(",")
        if coding.strip().lower() not in ("", "identity")
    ]
    if not codings:
        return "identity"
    if len(codings) == 1 and codings[0] in _DECODED:
        return _DECODED[codings[0]]
    shown = ", ".join(codings)
    raise PullError(f"{_who(source)}: content-encoding {shown!r} was not asked for; not decoded")


def _refusal(response: httpx.Response) -> str:
    """`answered 401: '...'`; for a redirect, where to, and that it was not followed."""
    if response.is_redirect:
        target = response.headers.get("location", "")[:ERROR_BODY_CHARS]
        return f"answered {response.status_code} to {target!r} (redirects are not followed)"
    text = ""
    if response.headers.get("content-encoding", "identity").strip().lower() == "identity":
        kept = bytearray()
        for chunk in response.iter_raw():
            kept += chunk
            if len(kept) >= ERROR_BODY_CHARS:
                break
        text = bytes(kept[:ERROR_BODY_CHARS]).decode("utf-8", errors="replace")
    return f"answered {response.status_code}: {text!r}"


def _who(source: PullSource) -> str:
    return f"{source.name} (RELAY_UNLEASH_URL)" if source.from_settings else source.name


def _timed_out(source: PullSource, settings: Settings) -> str:
    return f"{_who(source)}: timed out (pull timeout {settings.pull_timeout:g} s, total)"
