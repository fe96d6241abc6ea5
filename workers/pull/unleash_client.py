"""Reading an Unleash server's event search (`GET /api/admin/search/events`), newest first.

A pull is held to a webhook delivery's bounds, through the same client
(`workers.http_client`, its synchronous `SyncClient`):

- connections go only to addresses the destination guard vetted: the host is resolved
  once, every address is checked, and the socket opens to a checked address (no DNS
  rebinding between check and connect); redirects are never followed;
- one deadline, `pull_timeout`, covers the whole request, so a server trickling a byte a
  second cannot hold a worker past it;
- the body is read as it arrives and decoded here, not by the client: gzip and deflate (the
  encodings asked for) are inflated at most `INFLATE_STEP` bytes per call, and the page is
  refused as soon as its decoded bytes pass `pull_max_page_bytes`, or its compressed
  bytes do (a stream that inflates to nothing is cut too). Any other content-encoding
  (br, zstd, several stacked) is refused, never decoded. Measured: a 200 MB page, or
  0.5 MB of gzip inflating to 500 MB, raised the worker's RSS by 400 MB and 950 MB when
  read whole; cut at the 32 MiB default, well under 64 MB (tests/workers/pull/test_pull_hostile.py).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from pydantic_core import from_json

from relay.destinations import GUARD_HINT
from relay.settings import Settings
from relay.store.sources import PullSource
from workers.errors import WorkerError
from workers.http_client import SyncClient

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


def build_client(settings: Settings) -> SyncClient:
    """A client for pulls: guarded connections, the pull timeouts, no redirects."""
    return SyncClient(
        settings, timeout=settings.pull_timeout, connect_timeout=settings.pull_connect_timeout
    )


def fetch_page(
    http: SyncClient, *, source: PullSource, offset: int, limit: int, settings: Settings
) -> SearchPage:
    """Events `offset` to `offset + limit` of `source`'s search, newest first."""
    url = f"{source.url}{SEARCH_PATH}"
    headers = {
        "accept": "application/json",
        "accept-encoding": ACCEPT_ENCODING,
        "authorization": source.token,
    }
    query = urlencode({"offset": offset, "limit": limit})
    reader = _PageReader(source, settings.pull_max_page_bytes)
    result = http.get(url=f"{url}?{query}", headers=headers, reader=reader)
    if result.refused:
        raise PullRefusedError(f"{_who(source)}: {result.error}; {GUARD_HINT}")
    if result.error is not None:
        raise PullError(f"{_who(source)}: cannot read {url}: {result.error}")
    return _page(source, reader.finish(url))


class _PageReader:
    """A `BodyReader` for one search page: a 200's body decoded within the cap, or what a
    refusing server said; the first problem is kept, and reading stops there."""

    def __init__(self, source: PullSource, limit: int) -> None:
        self.source = source
        self.limit = limit
        self.status = 0
        self.headers: Mapping[str, str] = {}
        self.body: _Body | None = None  # a 200's
        self.refusal = bytearray()  # the start of anything else's
        self.problem: PullError | None = None

    def head(self, status: int, headers: Mapping[str, str]) -> bool:
        self.status, self.headers = status, headers
        if status != 200:  # read a refusal's text only when it is not compressed
            return _is_redirect(status, headers) or _encoding_of(headers) != "identity"
        try:
            self.body = _Body(_encoding(headers, self.source), self.limit)
        except PullError as exc:
            self.problem = exc
            return True
        return False

    def feed(self, chunk: bytes) -> bool:
        if self.body is None:
            self.refusal += chunk
            return len(self.refusal) >= ERROR_BODY_CHARS
        try:
            self.body.feed(chunk)
        except _BadBodyError as exc:
            self.problem = PullError(f"{_who(self.source)}: {exc}")
            return True
        return False

    def finish(self, url: str) -> bytes:
        """The page's decoded bytes, once the answer has been read; PullError if refused."""
        if self.problem is not None:
            raise self.problem
        if self.body is None:
            raise PullError(f"{_who(self.source)}: {url} {self._refused()}")
        try:
            return self.body.finish()
        except _BadBodyError as exc:
            raise PullError(f"{_who(self.source)}: {exc}") from exc

    def _refused(self) -> str:
        """`answered 401: '...'`; for a redirect, where to, and that it was not followed."""
        if _is_redirect(self.status, self.headers):
            target = self.headers.get("location", "")[:ERROR_BODY_CHARS]
            return f"answered {self.status} to {target!r} (redirects are not followed)"
        text = bytes(self.refusal[:ERROR_BODY_CHARS]).decode("utf-8", errors="replace")
        return f"answered {self.status}: {text!r}"


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


def _encoding_of(headers: Mapping[str, str]) -> str:
    return headers.get("content-encoding", "identity").strip().lower() or "identity"


def _encoding(headers: Mapping[str, str], source: PullSource) -> str:
    codings = [
        coding.strip().lower()
        for coding in headers.get("content-encoding", "").split(",")
        if coding.strip().lower() not in ("", "identity")
    ]
    if not codings:
        return "identity"
    if len(codings) == 1 and codings[0] in _DECODED:
        return _DECODED[codings[0]]
    shown = ", ".join(codings)
    raise PullError(f"{_who(source)}: content-encoding {shown!r} was not asked for; not decoded")


def _is_redirect(status: int, headers: Mapping[str, str]) -> bool:
    # as httpx's Response.is_redirect
    return status in (301, 302, 303, 307, 308) and "location" in headers


def _who(source: PullSource) -> str:
    return f"{source.name} (RELAY_UNLEASH_URL)" if source.from_settings else source.name
