"""Logging: JSON lines off a terminal, readable text on one, extras kept as fields."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator

import pytest

from relay.observability.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """configure_logging changes the root logger: put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_when_not_a_terminal() -> None:
    """Off a terminal each record is one JSON object with the caller's extra fields."""
    # given
    stream = io.StringIO()
    configure_logging("INFO", component="worker", stream=stream)
    # when
    logging.getLogger("relay.test").warning("sent %s", "d1", extra={"delivery_id": "d1"})
    # then
    line = json.loads(stream.getvalue())
    assert line["level"] == "warning"
    assert line["component"] == "worker"
    assert line["logger"] == "relay.test"
    assert line["message"] == "sent d1"
    assert line["delivery_id"] == "d1"
    assert line["time"].endswith("+00:00")


def test_exceptions_are_one_json_line() -> None:
    """A logged exception stays on the record's one line, as an `exception` field."""
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("relay.test").exception("failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "ValueError: boom" in json.loads(lines[0])["exception"]


def test_text_on_a_terminal() -> None:
    """On a terminal a record is one readable line: level, component, logger, message, extras."""
    # given: a pseudo-terminal
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        configure_logging("INFO", component="api", stream=terminal)
        # when
        logging.getLogger("relay.test").info("hello", extra={"event_id": 7})
        terminal.flush()
        text = os.read(leader, 4096).decode()
    os.close(leader)
    # then
    assert not text.startswith("{")
    assert "INFO    api relay.test: hello event_id=7" in text


def test_level_filters_and_a_second_call_replaces_the_handler() -> None:
    """Records under the level are dropped; configuring twice does not duplicate lines."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=first)
    configure_logging("WARNING", stream=second)
    log = logging.getLogger("relay.test")
    log.info("quiet")
    log.warning("loud")
    assert first.getvalue() == ""
    assert [json.loads(line)["message"] for line in second.getvalue().splitlines()] == ["loud"]


# what an idle relay said every second, or every request, at INFO
ROUTINE = [
    ("celery.beat", "Scheduler: Sending due task pump (relay.pump)"),
    ("celery.worker.strategy", "Task relay.pump[1] received"),
    ("celery.app.trace", "Task relay.pump[1] succeeded in 0.0004s: 0"),
    ("uvicorn.access", '127.0.0.1:5 - "GET /healthz HTTP/1.1" 200'),
]


@pytest.mark.parametrize(("logger", "message"), ROUTINE, ids=[r[0] for r in ROUTINE])
def test_routine_lines_are_quiet_at_info_and_shown_at_debug(logger: str, message: str) -> None:
    """Beat sends, task received/succeeded, access lines: DEBUG-only; their warnings stay."""
    # uvicorn sets its loggers' own levels from its `log_level` (an earlier test's server)
    logging.getLogger(logger).setLevel(logging.NOTSET)
    quiet, verbose = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=quiet)
    logging.getLogger(logger).info(message)
    logging.getLogger(logger).warning("something is wrong")
    configure_logging("DEBUG", stream=verbose)
    logging.getLogger(logger).info(message)
    assert [json.loads(line)["message"] for line in quiet.getvalue().splitlines()] == [
        "something is wrong"
    ]
    assert json.loads(verbose.getvalue())["message"] == message
