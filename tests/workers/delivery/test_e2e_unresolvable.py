"""End to end: a destination whose name does not resolve is retried, the reason in `_status`.

A real worker process (with beat) and the API in-process on the same Redis, with the
destination guard on (the default) and off (RELAY_ALLOW_PRIVATE_DESTINATIONS). The
`.invalid` top-level domain never resolves (RFC 2606). The schedule retries twice quickly,
then waits a minute: the test sees three failed attempts and a fourth still to come.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relay.settings import Settings
from tests import support
from tests.support import eventually

# redis_client: each test starts on an emptied database (conftest's `api_for` opens the API)
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("redis_client")]

ADMIN = {"Authorization": "test-admin-token"}
SUBS = "/api/v2/integrations/webhook"
HOST = "hooks.example.invalid"
ALL_FLAGS = [{"effect": "allow", "resources": ["proj/*:env/*:flag/*"], "actions": ["*"]}]


def status_of(api: TestClient, sub_id: str) -> dict[str, Any]:
    response = api.get(f"{SUBS}/{sub_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    shown: dict[str, Any] = response.json()
    return shown


def third_attempt_done(api: TestClient, sub_id: str) -> dict[str, Any] | None:
    """The subscription's one delivery once it has failed three times, else None."""
    items = support.deliveries_of(api, sub_id, headers=ADMIN)
    return items[0] if len(items) == 1 and items[0]["attemptCount"] >= 3 else None


@pytest.mark.parametrize(
    "guard_on",
    [
        pytest.param(True, id="guard-on"),
        pytest.param(False, id="guard-off"),
    ],
)
def test_an_unresolvable_destination_is_retried_with_the_reason_in_status(
    settings: Settings,
    start_worker: Callable[..., Any],
    api_for: Callable[[Settings], TestClient],
    guard_on: bool,
) -> None:
    """Each attempt fails with `cannot resolve <host>`: the delivery waits for its next
    attempt, the subscription stays on, and a writer reads the reason in `_status.errors`."""
    # given
    config = settings.model_copy(
        update={"allow_private_destinations": not guard_on, "retry_schedule": [0.2, 0.2, 60.0]}
    )
    api = api_for(config)
    start_worker(config)
    sub_id = support.subscribe_via_api(
        api, f"https://{HOST}/relay", name="unresolvable", headers=ADMIN, statements=ALL_FLAGS
    )
    # when
    support.post_events(api, [support.unleash_event()], headers=ADMIN)
    # then: three attempts, each a retry, and a fourth scheduled
    delivery = eventually(lambda: third_attempt_done(api, sub_id), timeout=30, interval=0.1)
    assert delivery["state"] == "failed" and delivery["nextAttemptAt"] is not None, delivery
    assert [a["outcome"] for a in delivery["attempts"]] == ["retry"] * 3, delivery
    # (the worker counts an attempt in `_status` just after it settles the delivery)
    shown = eventually(lambda: (s := status_of(api, sub_id))["_status"]["errorCount"] == 3 and s)
    assert shown["on"] is True
    status = shown["_status"]
    assert status.get("disabledReason") is None and status.get("circuitState") is None, status
    assert status["failingSince"] is not None
    # and the reason, in each attempt and in `_status`, names the host it could not resolve
    reasons = [a["error"] for a in delivery["attempts"]]
    reasons += [e["responseBody"] for e in status["errors"] if e.get("statusCode") is None]
    assert len(reasons) == 6, status
    assert all(r.startswith(f"cannot resolve {HOST}: ") for r in reasons), reasons
