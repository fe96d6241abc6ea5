"""LaunchDarkly's Handlebars helpers (equal, pathEncode, queryEncode, basicAuthHeaderValue,
formatWithOffset, lookup) and the tables of helpers the compiler knows."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

from relay.integrations.handlebars.bounds import Run
from relay.integrations.handlebars.errors import RenderError
from relay.integrations.handlebars.values import (
    is_number,
    js_string,
    property_of,
    strict_equal,
    to_float,
    truthy,
)


def _uri_encode(value: Any, run: Run, safe: str) -> str:
    """encodeURI / encodeURIComponent of String(value)."""
    try:
        return quote(js_string(value, run), safe=safe)
    except UnicodeEncodeError as exc:
        raise RenderError("URI malformed: the value holds a lone surrogate") from exc


def _path_encode(run: Run, value: Any) -> str:
    """pathEncode: JavaScript's encodeURI."""
    return _uri_encode(value, run, ";,/?:@&=+$!*'()#")


def _query_encode(run: Run, value: Any) -> str:
    """queryEncode: JavaScript's encodeURIComponent."""
    return _uri_encode(value, run, "!*'()")


def _basic_auth(run: Run, user: Any, password: Any) -> str:
    """basicAuthHeaderValue: "Basic " and base64 of `user:password` in UTF-8."""
    pair = f"{js_string(user, run)}:{js_string(password, run)}"
    try:
        raw = pair.encode("utf-8")
    except UnicodeEncodeError:  # Node's Buffer writes a lone surrogate as U+FFFD
        fixed = pair.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        raw = fixed.encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _lookup(run: Run, parent: Any, key: Any) -> Any:
    """lookup: `parent[key]` where parent is truthy, else parent itself."""
    if not truthy(parent):
        return parent
    return property_of(parent, js_string(key, run))


def _equal(run: Run, left: Any, right: Any) -> bool:
    """equal as a subexpression (relay's extension): `left === right`."""
    return strict_equal(left, right)


def _format_with_offset(run: Run, milliseconds: Any, offset: Any, fmt: Any) -> Any:
    """formatWithOffset: the time `milliseconds + 1000 * offset` in the format asked."""
    if not (is_number(milliseconds) and is_number(offset)):
        raise RenderError("formatWithOffset takes a number of milliseconds and of seconds")
    when = to_float(milliseconds) + 1000.0 * to_float(offset)
    if not math.isfinite(when) or abs(when) > 8.64e15:
        raise RenderError("formatWithOffset: the time is out of JavaScript's Date range")
    stamp = int(when)  # Date's TimeClip truncates toward zero
    if fmt == "seconds" and isinstance(fmt, str):
        return _js_round(stamp / 1000)
    if fmt == "rfc3339" and isinstance(fmt, str):
        return _iso_time(stamp)
    if fmt == "simple" and isinstance(fmt, str):
        return _simple_time(stamp)
    return stamp


def _js_round(number: float) -> int:
    """Math.round: the nearest integer, halves toward +infinity."""
    floor = math.floor(number)
    return floor + 1 if number - floor >= 0.5 else floor


def _civil(stamp: int) -> tuple[int, int, int, int, int, int, int]:
    """UTC year, month, day, hour, minute, second, millisecond of a time in ms since 1970."""
    days, in_day = divmod(stamp, 86_400_000)
    # days to a proleptic Gregorian date (H. Hinnant's days_from_civil, inverted)
    shifted = days + 719_468
    era, day_of_era = divmod(shifted, 146_097)
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    year = year_of_era + era * 400 + (1 if month <= 2 else 0)
    seconds, millis = divmod(in_day, 1000)
    return year, month, day, seconds // 3600, seconds // 60 % 60, seconds % 60, millis


def _iso_time(stamp: int) -> str:
    """Date.prototype.toISOString."""
    year, month, day, hour, minute, second, millis = _civil(stamp)
    if 0 <= year <= 9999:
        year_text = f"{year:04d}"
    else:
        year_text = ("+" if year > 0 else "-") + f"{abs(year):06d}"
    return f"{year_text}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def _simple_time(stamp: int) -> str:
    """dateformat's `yyyy-mm-dd h:MM:ss` in UTC (h: the hour on a 12-hour clock, 1-12)."""
    year, month, day, hour, minute, second, _ = _civil(stamp)
    clock = f"{hour % 12 or 12}:{minute:02d}:{second:02d}"
    return f"{str(year).rjust(4, '0')}-{month:02d}-{day:02d} {clock}"


# name: (arity, function); usable in {{name ...}} and as (name ...)
VALUE_HELPERS: Final[dict[str, tuple[int, Callable[..., Any]]]] = {
    "lookup": (2, _lookup),
    "pathEncode": (1, _path_encode),
    "queryEncode": (1, _query_encode),
    "basicAuthHeaderValue": (2, _basic_auth),
    "formatWithOffset": (3, _format_with_offset),
}
# relay's extension: equal as a value, only as (equal a b); {{#equal}} is the block helper
EQUAL_VALUES: Final = {"equal": (2, _equal), "equalWithElse": (2, _equal)}
BLOCK_HELPERS: Final = {
    "if": 1,
    "unless": 1,
    "each": 1,
    "with": 1,
    "equal": 2,
    "equalWithElse": 2,
}
UNSUPPORTED_HELPERS: Final = {"log", "helperMissing", "blockHelperMissing"}
