"""The sender's loop: a task's thread waits for its sends to hold a slot, not to end."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from relay.settings import Settings
from workers.delivery.sender import Batch, LoopSender, OutboundRequest, SendAll
from workers.http_client import SendResult


def batch_to(url: str, results: list[SendResult]) -> Batch:
    """A batch that POSTs once to `url` and keeps the result."""

    async def run(send: SendAll) -> None:
        request = OutboundRequest(url=url, body=b"{}", headers={"webhook-id": "msg_1_s"})
        results.extend(await send([request]))

    return run


def test_start_returns_once_the_sends_hold_a_slot(
    settings: Settings, receivers: Callable[[], Any]
) -> None:
    """A receiver answering in 1.5 s holds a slot on the loop, not the calling thread."""
    # given
    receiver = receivers()
    receiver.always(200, delay=1.5)
    sender = LoopSender(settings)
    results: list[SendResult] = []
    try:
        # when
        started = time.monotonic()
        sender.start([batch_to(receiver.url, results)])
        returned = time.monotonic() - started
        # then
        assert returned < 1.0 and results == []
        receiver.wait_for(1)
    finally:
        sender.close()  # lets the running batch finish
    assert [r.status_code for r in results] == [200]


def test_start_waits_while_every_slot_is_taken(
    settings: Settings, receivers: Callable[[], Any]
) -> None:
    """With one slot per worker, the second batch's thread waits for the first send to end."""
    # given
    receiver = receivers()
    receiver.always(200, delay=0.5)
    sender = LoopSender(settings.model_copy(update={"delivery_concurrency": 1}))
    results: list[SendResult] = []
    try:
        sender.start([batch_to(receiver.url, results)])
        # when
        started = time.monotonic()
        sender.start([batch_to(receiver.url, results)])
        # then
        assert time.monotonic() - started >= 0.4
    finally:
        sender.close()
    assert len(results) == 2


def test_an_error_before_the_sends_reaches_the_caller(settings: Settings) -> None:
    """A batch failing before it sends (Redis down, say) fails the task that started it."""

    async def broken(send: SendAll) -> None:
        raise RuntimeError("no Redis")

    sender = LoopSender(settings)
    try:
        with pytest.raises(RuntimeError, match="no Redis"):
            sender.start([broken])
    finally:
        sender.close()
