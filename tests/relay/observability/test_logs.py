"""Logging: JSON lines off a terminal, readable text on one, extras kept as fields; activity
lines shown at INFO and read as `time message` on a terminal; producer text made printable."""

from __future__ import annotations

import io
import json
import logging
import os
import select
from collections.abc import Callable, Iterator

import pytest

from relay.observability.logs import activity_level, configure_logging, printable


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """configure_logging changes the root logger and the activity level: put them back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    configure_logging(level, stream=io.StringIO())  # off a terminal: activity at DEBUG again
    root.handlers[:] = handlers
    root.setLevel(level)


def on_a_terminal(level: str, write: Callable[[], None], *, component: str = "worker") -> str:
    """What `write` logged through configure_logging(level) to a pseudo-terminal."""
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        configure_logging(level, component=component, stream=terminal)
        write()
        terminal.flush()
        text = b""
        while select.select([leader], [], [], 0.2)[0]:  # all there is, however it is split
            text += os.read(leader, 65536)
    os.close(leader)
    return text.decode()


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


def test_activity_lines_on_a_terminal_read_as_time_and_message() -> None:
    """On a terminal an activity line is `time message` at INFO: no logger, no extras; the
    level word only from WARNING up."""
    # given
    deliveries = logging.getLogger("relay.activity.deliveries")

    def write() -> None:
        deliveries.log(activity_level(), "event 1 delivered", extra={"delivery_id": "d1"})
        deliveries.warning("event 2 dead", extra={"delivery_id": "d2"})
        logging.getLogger("relay.activityish").info("not activity")

    # when
    text = on_a_terminal("INFO", write)
    # then
    lines = text.splitlines()
    assert [line[8:] for line in lines[:2]] == [" event 1 delivered", " WARNING event 2 dead"]
    assert all(line[:8].count(":") == 2 for line in lines[:2])  # HH:MM:SS
    assert "INFO    worker relay.activityish: not activity" in lines[2]


def test_routine_activity_is_info_on_a_terminal_and_debug_off_one() -> None:
    """Production (JSON) keeps routine activity at DEBUG: at INFO such lines make no record."""
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        configure_logging("INFO", stream=terminal)
        assert activity_level() == logging.INFO
    os.close(leader)
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    assert activity_level() == logging.DEBUG
    log = logging.getLogger("relay.activity.events")
    assert not log.isEnabledFor(activity_level())
    log.warning("event 3 dead", extra={"event_id": 3, "outcome": "dead"})
    line = json.loads(stream.getvalue())
    assert (line["logger"], line["message"], line["event_id"], line["outcome"]) == (
        "relay.activity.events",
        "event 3 dead",
        3,
        "dead",
    )


PRINTABLE_CASES = [
    ("plain text is kept", "checkout.v2", "checkout.v2"),
    ("non-ASCII letters are kept", "café 日本", "café 日本"),
    ("a newline is escaped", "a\nb", "a\\nb"),
    ("ESC is escaped", "\x1b[31mred", "\\x1b[31mred"),
    ("a C1 control is escaped", "\x9b2J", "\\x9b2J"),
    ("a bidi override is escaped", "abc\u202edef", "abc\\u202edef"),
    ("a line separator is escaped", "a\u2028b", "a\\u2028b"),
    ("a lone surrogate is escaped", "\ud800", "\\ud800"),
    ("long text is cut to the limit", "x" * 100, "x" * 79 + "…"),
    ("escapes count towards the limit", "\n" * 100, "\\n" * 39 + "\\…"),
    ("exactly the limit is kept", "y" * 80, "y" * 80),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [case[1:] for case in PRINTABLE_CASES],
    ids=[case[0] for case in PRINTABLE_CASES],
)
def test_printable_escapes_what_a_terminal_would_obey_and_bounds_the_length(
    text: str, expected: str
) -> None:
    """Producer text keeps its letters; controls show as escapes; at most 80 characters."""
    assert printable(text) == expected


def test_a_hostile_activity_line_is_one_line_on_the_terminal() -> None:
    """A producer's newline and ANSI escapes, made printable, stay inside their own line."""
    hostile = "f\n00:00:00 event 9 recorded: forged\x1b[2J"
    text = on_a_terminal(
        "INFO",
        lambda: logging.getLogger("relay.activity.events").info("flag %s", printable(hostile)),
    )
    assert text.count("\n") == 1 and "\x1b" not in text


def test_any_line_quoting_a_senders_text_is_one_line_on_the_terminal() -> None:
    """Not only activity lines: a warning quoting what a pull source or receiver sent (a
    newline, ANSI escapes) is one escaped line; a traceback keeps its own lines."""
    hostile = "bad event\n00:00:01 INFO    api relay: forged\x1b[31m"
    text = on_a_terminal(
        "INFO", lambda: logging.getLogger("workers.pull").warning("source sent %s", hostile)
    )
    assert text.count("\n") == 1 and "\x1b" not in text
    assert "bad event\\n00:00:01" in text and "\\x1b[31m" in text

    def fail() -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("relay.test").exception("failed")

    lines = on_a_terminal("INFO", fail).splitlines()
    assert lines[1] == "Traceback (most recent call last):" and lines[-1] == "ValueError: boom"
