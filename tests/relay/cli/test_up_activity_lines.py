"""`relay up` on a terminal: quiet while idle, then one readable line per event recorded and
per delivery outcome (issue 18, "the first five minutes")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.cli.embedded_redis import free_port
from tests.relay.cli.up_process import (
    STARTUP_LIMIT,
    RelayUp,
    ready,
    stop,
    up_environment,
    wait_for,
)
from tests.support import post_events, subscribe_via_api

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

IDLE_SECONDS = 12  # a dozen pump ticks, one sweep
TIME = r"\d\d:\d\d:\d\d"
ENABLED = {
    "type": "feature-environment-enabled",
    "featureName": "checkout.v2",
    "project": "default",
    "environment": "production",
    "createdBy": "alice@example.com",
}


@pytest.fixture
def up_on_a_terminal(tmp_path: Path) -> Iterator[RelayUp]:
    """The `relay` console script's `up`, its stdout and stderr a pseudo-terminal whose lines
    are collected in `stderr`; a fresh data dir, a free port."""
    port = free_port()
    data_dir = tmp_path / "data"
    relay = Path(sys.executable).parent / "relay"
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [str(relay), "up", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=tmp_path,
        env={**up_environment(), "RELAY_ALLOW_PRIVATE_DESTINATIONS": "true"},
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    up = RelayUp(process, f"http://127.0.0.1:{port}", data_dir)
    # drain the terminal, or the children block once its buffer fills
    reader = threading.Thread(target=_read_lines, args=(leader, up.stderr), daemon=True)
    reader.start()
    try:
        yield up
    finally:
        stop(up)
        reader.join(10)  # it ends when the last child closes the terminal
        os.close(leader)


def _read_lines(leader: int, sink: list[str]) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # every writer closed the terminal
            return
        if not chunk:
            return
        *lines, pending = (pending + chunk).split(b"\n")
        sink.extend(line.decode(errors="replace").rstrip("\r") for line in lines)


def test_idle_up_prints_nothing_then_a_line_per_event_and_per_delivery(
    up_on_a_terminal: RelayUp, receivers: Callable[[], Any]
) -> None:
    """Idle: no line at all. An event to one subscription: its recorded line and its
    delivered line, each `time message`, and nothing else."""
    # given: started, its banner shown, settled
    up = up_on_a_terminal
    wait_for(lambda: ready(up), STARTUP_LIMIT * 2, "/readyz")
    wait_for(lambda: "Press Ctrl-C to stop." in up.stderr, 10, "the banner")
    time.sleep(2)
    # when: idle
    before = len(up.stderr)
    time.sleep(IDLE_SECONDS)
    # then: silence
    assert up.stderr[before:] == []
    # when: a subscription, then an event it wants
    receiver = receivers()
    token = (up.data_dir / "admin-token").read_text().strip()
    with httpx.Client(base_url=up.url, headers={"Authorization": token}, timeout=10) as api:
        sub_id = subscribe_via_api(api, receiver.url, name="first five minutes")
        [event_id] = post_events(api, [ENABLED], headers={})
    receiver.wait_for(1)
    # then: its two lines, and only those
    delivered = re.compile(
        rf'{TIME} event {event_id} delivered to "first five minutes" '
        rf"\(webhook {sub_id[:8]}\): HTTP 200 in \d+ ms, attempt 1"
    )
    wait_for(lambda: any(delivered.fullmatch(line) for line in up.stderr), 15, "delivered")
    time.sleep(1)  # anything else it would print
    recorded = re.compile(
        rf"{TIME} event {event_id} recorded: feature-environment-enabled, flag checkout.v2, "
        r"default/production, by alice@example.com: 1 subscription wants it"
    )
    new = up.stderr[before:]
    assert len(new) == 2, "\n".join(new)
    assert recorded.fullmatch(new[0]) and delivered.fullmatch(new[1]), "\n".join(new)
