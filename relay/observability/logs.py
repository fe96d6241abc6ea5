"""Logging for every relay process: JSON lines for machines, readable text on a terminal.

Every process (`relay up` and the API, worker and beat it starts) calls `configure_logging`
as it starts. An idle relay is quiet at INFO: routine lines (beat, task received/succeeded,
access lines) show at DEBUG only. Whatever a caller passes as `extra={...}` becomes fields
of the JSON line, so ids (`event_id`, `delivery_id`, `subscription_id`) can be searched for.

Activity lines (loggers under `relay.activity`: an event fanned out, a delivery's outcome)
are what a person watching `relay up` wants to see: on a terminal they log at INFO and read
as `time message`; elsewhere their routine ones log at DEBUG (`activity_level`), as
production fans out tens of thousands of events a second.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

ACTIVITY: Final = "relay.activity"  # the loggers of activity lines are named under it
ACTIVITY_FIELD_LENGTH: Final = 80  # characters of one producer- or writer-given field in a line

# attributes every LogRecord has; anything else on a record came from `extra=`
# (uvicorn's `color_message` repeats the message with terminal colour codes)
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, component, logger, message, extras."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(extra_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL component logger: message key=value ...` for people at a terminal; an
    activity line as `time message`, with the level word only from WARNING up."""

    def __init__(self, component: str) -> None:
        component = component.replace("%", "%%")
        super().__init__(
            f"%(asctime)s %(levelname)-7s {component} %(name)s: %(message)s", datefmt="%H:%M:%S"
        )

    def formatMessage(self, record: logging.LogRecord) -> str:
        """One line whatever the message holds: a sender's text quoted in any line (a pull
        source's invalid event, a receiver's answer) cannot start another or move the
        cursor; the traceback, added after this, keeps its lines."""
        if is_activity(record):
            level = f"{record.levelname} " if record.levelno >= logging.WARNING else ""
            return escaped(f"{record.asctime} {level}{record.message}")
        text = super().formatMessage(record)
        extras = " ".join(f"{key}={value}" for key, value in extra_fields(record).items())
        return escaped(f"{text} {extras}" if extras else text)


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """What the caller added to the record with `extra=`."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")
    }


def is_activity(record: logging.LogRecord) -> bool:
    """Whether `record` is an activity line (its logger is `relay.activity` or under it)."""
    return record.name == ACTIVITY or record.name.startswith(f"{ACTIVITY}.")


# INFO once configure_logging writes to a terminal
_activity_level = logging.DEBUG


def activity_level() -> int:
    """The level of a routine activity line (an event fanned out, a delivery delivered):
    INFO when the logs go to a terminal, DEBUG otherwise. Callers check
    `logger.isEnabledFor(activity_level())` before composing the line."""
    return _activity_level


def printable(text: str, *, limit: int = ACTIVITY_FIELD_LENGTH) -> str:
    """`text` made safe for one log line: at most `limit` characters (cut with "…"), and
    every character that is not printable (newlines, ANSI escapes, C1 controls, bidi
    overrides, line separators) written as its escape (`\\n`, `\\x1b`, `\\u202e`).

    For what producers and writers chose (an event's fields, a subscription's name): such a
    string must not forge a second line or send escape sequences to an operator's terminal.
    """
    cut = len(text) > limit
    text = escaped(text[:limit])  # never more than `limit` characters to scan
    cut = cut or len(text) > limit
    return f"{text[: limit - 1]}…" if cut else text


def escaped(text: str) -> str:
    """`text` with each character that is not printable written as its escape (`\\n`)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class _RelayHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so a second call replaces it."""


# An idle relay's routine, several lines a second at INFO (about 260,000 a day): beat
# sending the pump, the worker's "received" and "succeeded" for each run, and an access
# line per request. Shown at DEBUG; their warnings and errors always.
ROUTINE_LOGGERS = frozenset(
    {"celery.beat", "celery.worker.strategy", "celery.app.trace", "uvicorn.access"}
)


class _RoutineFilter(logging.Filter):
    """Drops routine loggers' records under WARNING unless the level is DEBUG."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.show_routine = level <= logging.DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        return (
            self.show_routine
            or record.levelno >= logging.WARNING
            or record.name not in ROUTINE_LOGGERS
        )


def configure_logging(
    level: str | int = "INFO", *, component: str = "relay", stream: TextIO | None = None
) -> None:
    """Send the root logger to `stream` (stderr): JSON lines unless it is a terminal, where
    routine activity lines show at INFO."""
    global _activity_level
    stream = stream if stream is not None else sys.stderr
    handler = _RelayHandler(stream)
    terminal = _is_terminal(stream)
    _activity_level = logging.INFO if terminal else logging.DEBUG
    formatter_class = TextFormatter if terminal else JsonFormatter
    handler.setFormatter(formatter_class(component))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _RelayHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # a filter, not logger levels: uvicorn and celery set their loggers' levels themselves
    handler.addFilter(_RoutineFilter(root.level))


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False
