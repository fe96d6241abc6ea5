"""Which proxies' `X-Forwarded-For` the served API trusts (RELAY_FORWARDED_ALLOW_IPS).

A real uvicorn server configured as `relay serve` is (`live_api`), with 3 failed
authentications allowed per address: a client that can choose its address by a header
escapes the throttle.
"""

from __future__ import annotations

import httpx
import pytest

from relay.settings import Settings


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The shared test settings with 3 failures per address; the trusted proxies as given."""
    trusted: str = getattr(request, "param", "")
    return settings.model_copy(
        update={"auth_failure_limit": 3, "auth_failure_window": 60, "forwarded_allow_ips": trusted}
    )


def _guess(base: str, n: int, forwarded_for: str) -> int:
    headers = {"Authorization": f"rly_guess{n}", "X-Forwarded-For": forwarded_for}
    return httpx.get(f"{base}/api/admin/events", headers=headers).status_code


def test_forwarded_for_from_loopback_is_not_trusted_by_default(live_api: str) -> None:
    """By default no proxy is trusted: guesses from 127.0.0.1 naming a new address in each
    X-Forwarded-For all count for 127.0.0.1, so the 4th is 429."""
    codes = [_guess(live_api, n, f"203.0.113.{n}") for n in range(4)]
    assert codes == [401, 401, 401, 429]


@pytest.mark.parametrize("settings", ["127.0.0.1"], indirect=True)
def test_a_trusted_proxy_forwards_the_client_address(live_api: str) -> None:
    """With RELAY_FORWARDED_ALLOW_IPS=127.0.0.1, failures count per forwarded client."""
    spread = [_guess(live_api, n, f"203.0.113.{n}") for n in range(4)]
    same = [_guess(live_api, n, "198.51.100.7") for n in range(4)]
    assert spread == [401] * 4
    assert same == [401, 401, 401, 429]
