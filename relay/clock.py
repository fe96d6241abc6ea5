"""The clock: now in milliseconds, and RFC 3339 timestamps as Unleash writes them."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

MAX_TIMESTAMP_LENGTH: Final = 64  # room for any sane fraction; keeps the parser's cache small

# RFC 3339 section 5.6 (with the space separator its note allows); the calendar is then
# checked by datetime.fromisoformat.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def now_ms() -> int:
    """Milliseconds since the epoch, by this machine's clock."""
    return int(time.time() * 1000)


@lru_cache(maxsize=4096)  # validation parses each createdAt, then recording needs its ms
def rfc3339_ms(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 timestamp; ValueError when it is not one."""
    if len(text) > MAX_TIMESTAMP_LENGTH:  # raising, so the cache does not keep it
        raise ValueError(
            f"must be an RFC 3339 timestamp of at most {MAX_TIMESTAMP_LENGTH} characters"
        )
    if not _RFC3339.match(text):
        raise ValueError("must be an RFC 3339 timestamp, e.g. 2022-05-31T13:32:20.560Z")
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise ValueError(f"not a valid date or time: {exc}") from None
    return (moment - _EPOCH) // _MILLISECOND


def now_rfc3339() -> str:
    """The current time as Unleash writes it: `2022-05-31T13:32:20.560Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339_of(ms: int) -> str:
    """Epoch milliseconds as Unleash writes a time: `2022-05-31T13:32:20.560Z`."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
