"""Reading an Unleash server's event search (`GET /api/admin/search/events`), newest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import httpx

import relay
from relay.settings import Settings
from relay.store.sources import PullSource
from workers.errors import WorkerError

SEARCH_PATH: Final = "/api/admin/search/events"
MAX_PAGE_BYTES: Final = 32 * 1024 * 1024


class PullError(WorkerError):
    """An Unleash server could not be read: unreachable, refused, or answered nonsense."""


@dataclass(frozen=True)
class SearchPage:
    """One page of Unleash's event search: raw event objects, newest first, and the total."""

    events: list[Any]
    total: int | None  # None when the server did not say


def build_client(settings: Settings) -> httpx.Client:
    """A client for pulls: explicit timeouts from settings, no redirects, no proxy from env."""
    return httpx.Client(
        timeout=httpx.Timeout(settings.pull_timeout, connect=settings.pull_connect_timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"Accept": "application/json", "User-Agent": f"relay/{relay.__version__}"},
    )


def fetch_page(http: httpx.Client, *, source: PullSource, offset: int, limit: int) -> SearchPage:
    """Events `offset` to `offset + limit` of `source`'s search, newest first."""
    url = f"{source.url}{SEARCH_PATH}"
    params = {"offset": str(offset), "limit": str(limit)}
    try:
        response = http.get(url, params=params, headers={"Authorization": source.token})
    except httpx.HTTPError as exc:
        raise PullError(f"{source.name}: cannot read {url}: {exc!r}") from exc
    if response.status_code != 200:
        raise PullError(
            f"{source.name}: {url} answered {response.status_code}: {response.text[:200]!r}"
        )
    if len(response.content) > MAX_PAGE_BYTES:
        raise PullError(f"{source.name}: a page of {len(response.content)} bytes is too large")
    return _page(source, response)


def _page(source: PullSource, response: httpx.Response) -> SearchPage:
    try:
        body = response.json()
    except ValueError as exc:
        raise PullError(f"{source.name}: event search did not answer JSON: {exc}") from exc
    events = body.get("events") if isinstance(body, dict) else None
    total = body.get("total") if isinstance(body, dict) else None
    if not isinstance(events, list):
        raise PullError(f"{source.name}: event search answer has no `events` array")
    if not isinstance(total, int) or isinstance(total, bool):
        total = None
    return SearchPage(events=events, total=total)
