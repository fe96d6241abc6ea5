"""`POST .../{id}/test`: many test sends to a receiver that never answers must not starve
the API (real uvicorn), and a test whose attempt is not made in time is a delivery to poll."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from relay.api.routes.deliveries import TEST_WAITERS
from relay.settings import Settings
from relay.store.client import Redis
from tests.support import subscribe

SUBS = "/api/v2/integrations/webhook"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A 1 s delivery timeout: a test call waits at most 6 s for the attempt."""
    return settings.model_copy(update={"delivery_timeout": 1.0})


def test_80_test_sends_do_not_delay_healthz(
    live_api: str, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """80 concurrent test sends that get no attempt (no worker: as a receiver that hangs)
    leave /healthz answering within a second, and each gets the delivery to follow."""
    # given
    sub_id = subscribe(redis_client)

    def test_send(_: int) -> httpx.Response:
        return httpx.post(f"{live_api}{SUBS}/{sub_id}/test", headers=admin_headers, timeout=30)

    # when
    with ThreadPoolExecutor(80) as pool:
        sends = [pool.submit(test_send, n) for n in range(80)]
        time.sleep(0.5)
        health = []
        for _ in range(5):
            started = time.monotonic()
            assert httpx.get(f"{live_api}/healthz", timeout=30).status_code == 200
            health.append(time.monotonic() - started)
            time.sleep(0.2)
        answers = [send.result() for send in sends]
    # then
    assert max(health) < 1.0, health
    assert {a.status_code for a in answers} == {202}, {a.text for a in answers}
    assert all(a.json()["state"] == "pending" for a in answers)
    assert len({a.headers["Location"] for a in answers}) == 80


def test_a_test_send_past_the_waiters_is_answered_at_once(
    live_api: str, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """Beyond TEST_WAITERS waiting calls, a test send is answered 202 without waiting."""
    sub_id = subscribe(redis_client)

    def test_send(_: int) -> tuple[float, httpx.Response]:
        started = time.monotonic()
        response = httpx.post(f"{live_api}{SUBS}/{sub_id}/test", headers=admin_headers, timeout=30)
        return time.monotonic() - started, response

    with ThreadPoolExecutor(TEST_WAITERS + 8) as pool:
        timed = list(pool.map(test_send, range(TEST_WAITERS + 8)))
    quick = [response for took, response in timed if took < 2]
    assert len(quick) >= 8
    assert {response.status_code for _, response in timed} == {202}


def test_a_pending_test_send_is_a_delivery_to_poll(
    live_api: str, redis_client: Redis, admin_headers: dict[str, str]
) -> None:
    """202 with the pending test delivery; its Location answers it (kind test) until it
    ends, and only under its own subscription."""
    # given
    sub_id, other = subscribe(redis_client), subscribe(redis_client)
    # when
    answer = httpx.post(f"{live_api}{SUBS}/{sub_id}/test", headers=admin_headers, timeout=30)
    # then
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["kind"], body["state"], body["subscriptionId"]) == ("test", "pending", sub_id)
    location = answer.headers["Location"]
    assert location == f"{SUBS}/{sub_id}/deliveries/{body['_id']}"
    polled = httpx.get(f"{live_api}{location}", headers=admin_headers, timeout=10)
    assert polled.status_code == 200, polled.text
    assert polled.json()["_id"] == body["_id"]
    wrong = httpx.get(
        f"{live_api}{SUBS}/{other}/deliveries/{body['_id']}", headers=admin_headers, timeout=10
    )
    assert wrong.status_code == 404
    assert wrong.json()["code"] == "not_found"


@pytest.mark.e2e
@pytest.mark.slow
def test_a_test_send_to_a_hanging_receiver_answers_with_the_timed_out_attempt(
    live_api: str,
    settings: Settings,
    admin_headers: dict[str, str],
    receivers: Callable[[], Any],
    start_worker: Any,
) -> None:
    """With a worker, the admin sees how the receiver answered (here: it did not, in 1 s)."""
    # given
    receiver = receivers()
    receiver.always(200, delay=10)
    start_worker(settings, beat=False)
    created = httpx.post(
        f"{live_api}{SUBS}",
        headers=admin_headers,
        json={"name": "hangs", "config": {"url": receiver.url}, "on": True},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    # when
    answer = httpx.post(
        f"{live_api}{SUBS}/{created.json()['_id']}/test", headers=admin_headers, timeout=30
    )
    # then
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["state"] == "dead"
    [attempt] = body["attempts"]
    assert "statusCode" not in attempt  # no answer
    assert "time" in json.dumps(attempt).lower(), attempt


@pytest.mark.e2e
@pytest.mark.slow
def test_a_test_sends_answer_is_masked_even_if_the_subscription_is_deleted_meanwhile(
    live_api: str,
    settings: Settings,
    admin_headers: dict[str, str],
    receivers: Callable[[], Any],
    start_worker: Any,
) -> None:
    """The receiver echoes the stored credential; the subscription is deleted while the
    test call waits: the answer masks the credential all the same."""
    # given
    token = "Bearer supersecret-token-1234"
    receiver = receivers()
    receiver.always(200, body=f"you sent {token}".encode(), delay=0.5)
    start_worker(settings, beat=False)
    created = httpx.post(
        f"{live_api}{SUBS}",
        headers=admin_headers,
        json={
            "name": "echoes",
            "config": {"url": receiver.url, "headers": {"Authorization": token}},
            "on": True,
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    sub_id = created.json()["_id"]
    # when
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(
            httpx.post, f"{live_api}{SUBS}/{sub_id}/test", headers=admin_headers, timeout=30
        )
        receiver.wait_for(1)
        deleted = httpx.delete(f"{live_api}{SUBS}/{sub_id}", headers=admin_headers, timeout=10)
        answer = sending.result()
    # then
    assert deleted.status_code == 204
    assert answer.status_code == 200, answer.text
    assert "supersecret" not in answer.text
    [attempt] = answer.json()["attempts"]
    assert attempt.get("statusCode") == 200, answer.text
