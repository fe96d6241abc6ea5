"""The live_api fixture serves the real app over HTTP."""

from __future__ import annotations

import httpx


def test_live_api_answers_healthz(live_api: str) -> None:
    """GET /healthz over a real socket answers ok."""
    assert httpx.get(f"{live_api}/healthz").json() == {"status": "ok"}
