"""Handlebars and Mustache templates for integration request bodies: a strict, bounded subset.

LaunchDarkly's integration framework writes request bodies, URLs and headers in Handlebars
(Handlebars.js 4.7 with the helpers of its helpers/index.js); Unleash's webhook addon
renders its `bodyTemplate` with mustache.js 4.2. `compile_template` parses either once;
`Template.render` then renders a context of JSON-like values (dict, list, str, int, float,
bool, None) exactly as those libraries do, for the subset such templates use.

Why not a template library: pybars compiles a template to Python source and runs it, so a
render can be bounded neither in steps nor in output, and no Python library escapes as
Handlebars 4 does (`'` as `&#x27;`, `` ` `` and `=` too) or renders values as JavaScript
does. Here a template becomes a small tree of closures; a render counts its steps (node
visits and loop iterations) and output characters and stops with RenderError past either
bound, and compile refuses what it does not implement (partials, decorators, raw blocks,
hash arguments, helpers other than LaunchDarkly's and the built-ins) with TemplateError
instead of guessing.

Handlebars mode: `{{path}}` (HTML-escaped), `{{{path}}}`, `{{& path}}`; paths `a.b`, `a/b`,
`this`, `.`, `../x`, `@root`, `@index`, `@key`, `@first`, `@last`, `[seg ment]`, `list.[0]`;
blocks `#if`, `#unless`, `#each` (block params `as |item key|`), `#with`, `{{else}}`,
`{{^}}`, `{{else if ...}}` chains; sections on any other name (Handlebars'
blockHelperMissing); helpers `lookup`, `equal`, `equalWithElse`, `pathEncode`,
`queryEncode`, `basicAuthHeaderValue`, `formatWithOffset` (its `simple` format in UTC);
comments, `~` whitespace control, standalone lines, `\\{{`. A missing value renders "".
Relay's one extension: `(equal a b)` as a subexpression is the boolean `a === b`
(Handlebars.js fails on it: LaunchDarkly's helper calls `options.fn`).

Mustache mode follows mustache.js: its escaping (`/` too, `'` as `&#39;`), sections that
iterate lists and push other truthy values, inverted sections, dotted names looked up
through the context stack, comments, standalone lines; no helpers, partials or `{{= =}}`.

Known departures, all refused or rare: JavaScript prototype members (`toString`,
`constructor`, ...) are never found; a context changes `../` depth unless it is the same
container or an equal scalar; `formatWithOffset` raises RenderError where JavaScript would
produce NaN or an invalid date.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

__all__ = ["RenderError", "Template", "TemplateError", "compile_template"]

MAX_NESTING: Final = 64


class TemplateError(ValueError):
    """A template that does not compile; the message names `name:line:column` and the fault."""


class RenderError(ValueError):
    """A render that failed or passed one of its bounds (the message says which)."""


class _Undefined:
    """JavaScript's `undefined`: a missing value, unlike JSON's null (None)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


_UNDEFINED: Final = _Undefined()
# Handlebars passes this empty object as `this` where the context is null or undefined
_NULL_CONTEXT: Final[dict[str, Any]] = {}
_MAX_SAFE_INTEGER: Final = 2**53
# JavaScript's \s, used for every whitespace test (Python's \s differs: \x1c-\x1f, \ufeff)
_WS: Final = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_WS_CHARS: Final = frozenset(
    _WS.replace("\u2000-\u200a", "") + "".join(map(chr, range(0x2000, 0x200B)))
)


# ---------------------------------------------------------------- values as JavaScript sees them


def _is_nullish(value: Any) -> bool:
    """True for null and undefined (JavaScript's `value == null`)."""
    return value is None or value is _UNDEFINED


def _is_number(value: Any) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _to_float(value: int | float) -> float:
    """The double JavaScript holds for `value` (JSON.parse rounds big integers the same way)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _number_text(value: int | float) -> str:
    """JavaScript's String(number): shortest round-trip digits, exponent past 1e21 or 1e-7."""
    if isinstance(value, int) and -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
        return str(value)
    number = _to_float(value)
    if number != number:
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    if number.is_integer() and abs(number) <= _MAX_SAFE_INTEGER:
        return str(int(number))
    sign = "-" if number < 0 else ""
    mantissa, _, exponent = repr(abs(number)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    return sign + _place_point(stripped.rstrip("0"), point)


def _place_point(digits: str, point: int) -> str:
    """Digits d1..dk with value 0.d1..dk x 10^point, written as ECMAScript Number::toString."""
    count = len(digits)
    if count <= point <= 21:
        return digits + "0" * (point - count)
    if 0 < point <= 21:
        return digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    exponent = point - 1
    sign = "+" if exponent >= 0 else "-"
    head = digits if count == 1 else digits[0] + "." + digits[1:]
    return f"{head}e{sign}{abs(exponent)}"


def _scalar_text(value: Any) -> str:
    """JavaScript's String(value) for anything but a list."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is _UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(value)
    if isinstance(value, dict):
        return "[object Object]"
    raise RenderError(f"cannot render a value of type {type(value).__name__}")


def _js_string(value: Any, run: _Run, depth: int = 0) -> str:
    """JavaScript's String(value): lists join their elements with "," (null ones empty)."""
    if not isinstance(value, list):
        return _scalar_text(value)
    if depth >= MAX_NESTING:
        raise RenderError(f"a list nested deeper than {MAX_NESTING} levels")
    run.tick(len(value))
    return ",".join("" if _is_nullish(item) else _js_string(item, run, depth + 1) for item in value)


def _output_text(value: Any, run: _Run) -> str:
    """The text a value renders as: "" for null and undefined, else String(value)."""
    if value.__class__ is str:
        return value
    if _is_nullish(value):
        return ""
    return _js_string(value, run)


def _truthy(value: Any) -> bool:
    """JavaScript truthiness: false, 0, NaN, "", null and undefined are false."""
    if value is True or value.__class__ in (dict, list):
        return True
    if isinstance(value, str):
        return value != ""
    if _is_nullish(value) or value is False:
        return False
    if _is_number(value):
        return bool(value == value and value != 0)
    return True


def _is_empty(value: Any) -> bool:
    """Handlebars' isEmpty: falsy but not 0, or an empty list."""
    if isinstance(value, list):
        return not value
    return not _truthy(value) and not (_is_number(value) and value == 0)


def _strict_equal(left: Any, right: Any) -> bool:
    """JavaScript's `left === right` (objects and arrays by identity)."""
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return left is right
    if _is_nullish(left) or _is_nullish(right):
        return left is right
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if _is_number(left) and _is_number(right):
        return _to_float(left) == _to_float(right)
    return type(left) is type(right) and bool(left == right)


_NUMERIC_STRING = re.compile(
    rf"[{_WS}]*([+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Infinity)|0[xX][0-9a-fA-F]+)?[{_WS}]*"
)


def _string_number(text: str) -> float:
    """JavaScript's Number(text) for decimal and hexadecimal text; NaN otherwise."""
    match = _NUMERIC_STRING.fullmatch(text)
    if match is None:
        return math.nan
    number = match.group(1)
    if not number:
        return 0.0
    if number[:2] in ("0x", "0X"):
        return float(int(number, 16))
    return float(number.replace("Infinity", "inf"))


def _loose_equal(left: Any, right: Any) -> bool:
    """JavaScript's `left == right` for scalars; containers only equal themselves."""
    if left is right:
        return True
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return False
    if _is_nullish(left) or _is_nullish(right):
        return _is_nullish(left) and _is_nullish(right)
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return _as_number(left) == _as_number(right)


def _as_number(value: Any) -> float:
    """ToNumber for a bool, number or string."""
    if isinstance(value, str):
        return _string_number(value)
    return _to_float(value)


def _array_index(key: str) -> int | None:
    """The index a property name denotes on an array, if it is a canonical one."""
    if key.isascii() and key.isdigit() and (key == "0" or key[0] != "0"):
        index = int(key)
        return index if index < 2**32 - 1 else None
    return None


def _utf16(text: str) -> str | bytes:
    """`text` itself when each character is one UTF-16 unit, else its UTF-16 bytes."""
    if text.isascii() or max(text) < "\U00010000":
        return text
    return text.encode("utf-16-le", "surrogatepass")


def _string_property(text: str, key: str) -> Any:
    """`text[key]` in JavaScript: its UTF-16 length, or the code unit at an index."""
    units = _utf16(text)
    size = len(units) if isinstance(units, str) else len(units) // 2
    if key == "length":
        return size
    index = _array_index(key)
    if index is None or index >= size:
        return _UNDEFINED
    if isinstance(units, str):
        return units[index]
    return units[2 * index : 2 * index + 2].decode("utf-16-le", "surrogatepass")


def _property(parent: Any, key: str) -> Any:
    """`parent[key]` for an own property of a JSON-like value, else undefined."""
    if isinstance(parent, dict):
        return parent.get(key, _UNDEFINED)
    if isinstance(parent, list):
        if key == "length":
            return len(parent)
        index = _array_index(key)
        return parent[index] if index is not None and index < len(parent) else _UNDEFINED
    if isinstance(parent, str):
        return _string_property(parent, key)
    return _UNDEFINED


def _has_property(parent: Any, key: str) -> bool:
    """mustache.js's `key in parent` for an object or array (own properties here)."""
    if isinstance(parent, dict):
        return key in parent
    if isinstance(parent, list):
        return _property(parent, key) is not _UNDEFINED or key == "length"
    return False


def _object_keys(value: dict[str, Any]) -> list[str]:
    """Object.keys order: array-index keys ascending first, then the rest as inserted."""
    indexes = [key for key in value if _array_index(key) is not None]
    if not indexes:
        return list(value)
    indexes.sort(key=int)
    return indexes + [key for key in value if _array_index(key) is None]


# ---------------------------------------------------------------- escaping


_HANDLEBARS_ESCAPES: Final = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("'"): "&#x27;",
    ord("`"): "&#x60;",
    ord("="): "&#x3D;",
}
_MUSTACHE_ESCAPES: Final = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("'"): "&#39;",
    ord("/"): "&#x2F;",
    ord("`"): "&#x60;",
    ord("="): "&#x3D;",
}
_HANDLEBARS_UNSAFE: Final = re.compile("[&<>\"'`=]")
_MUSTACHE_UNSAFE: Final = re.compile("[&<>\"'`=/]")


def _escape_handlebars(text: str) -> str:
    """Handlebars 4's escapeExpression on a string."""
    if _HANDLEBARS_UNSAFE.search(text) is None:
        return text
    return text.translate(_HANDLEBARS_ESCAPES)


def _escape_mustache(text: str) -> str:
    """mustache.js's escapeHtml on a string."""
    if _MUSTACHE_UNSAFE.search(text) is None:
        return text
    return text.translate(_MUSTACHE_ESCAPES)


# ---------------------------------------------------------------- the render's bounds


class _Run:
    """One render's output and the counts that bound it."""

    __slots__ = ("max_size", "max_steps", "out", "size", "steps")

    def __init__(self, max_size: int, max_steps: int) -> None:
        self.out: list[str] = []
        self.size = 0
        self.steps = 0
        self.max_size = max_size
        self.max_steps = max_steps

    def tick(self, count: int = 1) -> None:
        """Counts `count` steps; RenderError past the bound."""
        self.steps += count
        if self.steps > self.max_steps:
            raise RenderError(f"the render passed its bound of {self.max_steps} steps")

    def write(self, text: str) -> None:
        """Appends output; RenderError past the bound on characters."""
        self.out.append(text)
        self.size += len(text)
        if self.size > self.max_size:
            raise RenderError(f"the output passed its bound of {self.max_size} characters")


# ---------------------------------------------------------------- LaunchDarkly's helpers


def _uri_encode(value: Any, run: _Run, safe: str) -> str:
    """encodeURI / encodeURIComponent of String(value)."""
    try:
        return quote(_js_string(value, run), safe=safe)
    except UnicodeEncodeError as exc:
        raise RenderError("URI malformed: the value holds a lone surrogate") from exc


def _path_encode(run: _Run, value: Any) -> str:
    """pathEncode: JavaScript's encodeURI."""
    return _uri_encode(value, run, ";,/?:@&=+$!*'()#")


def _query_encode(run: _Run, value: Any) -> str:
    """queryEncode: JavaScript's encodeURIComponent."""
    return _uri_encode(value, run, "!*'()")


def _basic_auth(run: _Run, user: Any, password: Any) -> str:
    """basicAuthHeaderValue: "Basic " and base64 of `user:password` in UTF-8."""
    pair = f"{_js_string(user, run)}:{_js_string(password, run)}"
    try:
        raw = pair.encode("utf-8")
    except UnicodeEncodeError:  # Node's Buffer writes a lone surrogate as U+FFFD
        fixed = pair.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        raw = fixed.encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _lookup(run: _Run, parent: Any, key: Any) -> Any:
    """lookup: `parent[key]` where parent is truthy, else parent itself."""
    if not _truthy(parent):
        return parent
    return _property(parent, _js_string(key, run))


def _equal(run: _Run, left: Any, right: Any) -> bool:
    """equal as a subexpression (relay's extension): `left === right`."""
    return _strict_equal(left, right)


def _format_with_offset(run: _Run, milliseconds: Any, offset: Any, fmt: Any) -> Any:
    """formatWithOffset: the time `milliseconds + 1000 * offset` in the format asked."""
    if not (_is_number(milliseconds) and _is_number(offset)):
        raise RenderError("formatWithOffset takes a number of milliseconds and of seconds")
    when = _to_float(milliseconds) + 1000.0 * _to_float(offset)
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
_VALUE_HELPERS: Final[dict[str, tuple[int, Callable[..., Any]]]] = {
    "lookup": (2, _lookup),
    "pathEncode": (1, _path_encode),
    "queryEncode": (1, _query_encode),
    "basicAuthHeaderValue": (2, _basic_auth),
    "formatWithOffset": (3, _format_with_offset),
}
# relay's extension: equal as a value, only as (equal a b); {{#equal}} is the block helper
_EQUAL_VALUES: Final = {"equal": (2, _equal), "equalWithElse": (2, _equal)}
_BLOCK_HELPERS: Final = {
    "if": 1,
    "unless": 1,
    "each": 1,
    "with": 1,
    "equal": 2,
    "equalWithElse": 2,
}
_UNSUPPORTED_HELPERS: Final = {"log", "helperMissing", "blockHelperMissing"}


# ---------------------------------------------------------------- source positions


def _where(source: str, name: str, pos: int) -> str:
    """`name:line:column` (both from 1) of offset `pos` in `source`."""
    line = source.count("\n", 0, pos) + 1
    column = pos - (source.rfind("\n", 0, pos) + 1) + 1
    return f"{name}:{line}:{column}"


def _fail(source: str, name: str, pos: int, what: str) -> TemplateError:
    """A TemplateError naming where `what` went wrong."""
    return TemplateError(f"{_where(source, name, pos)}: {what}")


# ---------------------------------------------------------------- Handlebars: tokens


@dataclass(slots=True)
class _Token:
    """A token of Handlebars' lexer: its kind, text and offset."""

    kind: str
    text: str
    pos: int


# Handlebars' lexer rules inside {{ }}, in its order: the first that matches wins
_TAG_RULES: Final = [
    ("OPEN_SEXPR", r"\("),
    ("CLOSE_SEXPR", r"\)"),
    ("OPEN_RAW_BLOCK", r"\{\{\{\{"),
    ("CLOSE_RAW_BLOCK", r"\}\}\}\}"),
    ("OPEN_PARTIAL_BLOCK", r"\{\{~?#>"),
    ("OPEN_PARTIAL", r"\{\{~?>"),
    ("OPEN_BLOCK", r"\{\{~?#\*?"),
    ("OPEN_ENDBLOCK", r"\{\{~?/"),
    ("INVERSE", rf"\{{\{{~?\^[{_WS}]*~?\}}\}}"),
    ("INVERSE", rf"\{{\{{~?[{_WS}]*else[{_WS}]*~?\}}\}}"),
    ("OPEN_INVERSE", r"\{\{~?\^"),
    ("OPEN_INVERSE_CHAIN", rf"\{{\{{~?[{_WS}]*else(?![A-Za-z0-9_])"),
    ("OPEN_UNESCAPED", r"\{\{~?\{"),
    ("OPEN", r"\{\{~?&"),
    ("LONG_COMMENT", r"\{\{~?!--"),
    ("COMMENT", r"\{\{~?![\s\S]*?\}\}"),
    ("OPEN", r"\{\{~?\*?"),
    ("EQUALS", "="),
    ("ID", r"\.\."),
    ("ID", rf"\.(?=[=~}}{_WS}/.)|])"),
    ("SEP", r"[/.]"),
    ("SPACE", rf"[{_WS}]+"),
    ("CLOSE_UNESCAPED", r"\}~?\}\}"),
    ("CLOSE", r"~?\}\}"),
    ("STRING", r'"(?:\\"|[^"])*"'),
    ("STRING", r"'(?:\\'|[^'])*'"),
    ("DATA", "@"),
    ("BOOLEAN", rf"(?:true|false)(?=[~}}{_WS})])"),
    ("UNDEFINED", rf"undefined(?=[~}}{_WS})])"),
    ("NULL", rf"null(?=[~}}{_WS})])"),
    ("NUMBER", rf"-?[0-9]+(?:\.[0-9]+)?(?=[~}}{_WS})])"),
    ("OPEN_BLOCK_PARAMS", rf"as[{_WS}]+\|"),
    ("CLOSE_BLOCK_PARAMS", r"\|"),
    ("ID", rf"[^{_WS}!\"#%-,./;->@\[-\^`{{-~]+(?=[=~}}{_WS}/.)|])"),
    ("ID", r"\[(?:\\\]|[^\]])*\]"),
    ("INVALID", r"[\s\S]"),
]
_TAG_RE: Final = re.compile("|".join(f"({pattern})" for _, pattern in _TAG_RULES))
_TAG_KINDS: Final = [kind for kind, _ in _TAG_RULES]
_LONG_COMMENT_RE: Final = re.compile(r"[\s\S]*?--~?\}\}")
# after `\{{`: literal text of at least two characters up to the next tag or escape
_ESCAPED_RE: Final = re.compile(r"[\s\S]{2,}?(?=\{\{|\\\{\{|\\\\\{\{|\Z)")
_POPS: Final = {"CLOSE", "CLOSE_UNESCAPED", "INVERSE", "COMMENT"}


def _lex(source: str, name: str) -> list[_Token]:
    """Handlebars' tokens of `source`, ending with EOF."""
    tokens: list[_Token] = []
    pos, escaped = 0, False
    while pos < len(source):
        if escaped:
            match = _ESCAPED_RE.match(source, pos)
            assert match is not None  # `{{` is there: two characters at least
            tokens.append(_Token("CONTENT", match.group(), pos))
            pos, escaped = match.end(), False
            continue
        tag = source.find("{{", pos)
        end = len(source) if tag < 0 else tag
        text = source[pos:end]
        if tag >= 0 and text.endswith("\\\\"):
            text = text[:-1]  # `\\{{`: one backslash, then a tag
        elif tag >= 0 and text.endswith("\\"):
            text, escaped = text[:-1], True  # `\{{`: the tag is text
        if text:
            tokens.append(_Token("CONTENT", text, pos))
        pos = end
        if tag >= 0 and not escaped:
            pos = _lex_tag(source, name, pos, tokens)
    tokens.append(_Token("EOF", "", len(source)))
    return tokens


def _lex_tag(source: str, name: str, pos: int, tokens: list[_Token]) -> int:
    """Appends the tokens of the tag at `pos`; returns the offset after it."""
    while True:
        if pos >= len(source):
            raise _fail(source, name, pos, "the tag is not closed with }}")
        match = _TAG_RE.match(source, pos)
        assert match is not None and match.lastindex is not None  # INVALID matches any char
        kind, text = _TAG_KINDS[match.lastindex - 1], match.group()
        if kind == "LONG_COMMENT":
            long = _LONG_COMMENT_RE.match(source, pos)
            if long is None:
                raise _fail(source, name, pos, "the comment {{!-- is not closed with --}}")
            kind, text = "COMMENT", long.group()
        if kind == "OPEN_RAW_BLOCK":
            raise _fail(source, name, pos, "raw blocks ({{{{raw}}}}) are not supported")
        if kind == "INVALID" and source.find("}}", pos) < 0:
            raise _fail(source, name, pos, "the tag is not closed with }}")
        if kind == "INVALID":
            raise _fail(source, name, pos, f"unexpected {text!r} in a tag")
        if kind != "SPACE":
            tokens.append(_Token(kind, text, pos))
        pos += len(text)
        if kind in _POPS:
            return pos


# ---------------------------------------------------------------- Handlebars: syntax tree


@dataclass(slots=True)
class _Path:
    """A path: `@`-data or not, `../` depth, the parts after `this`, as written."""

    data: bool
    depth: int
    parts: list[str]
    original: str
    pos: int

    @property
    def scoped(self) -> bool:
        """Written with a leading `.`, `./`, `this`: never a helper or block parameter."""
        return re.search(r"^\.|this\b", self.original, re.ASCII) is not None

    @property
    def simple(self) -> bool:
        """One plain name: a helper's, a block parameter's or the context's."""
        return len(self.parts) == 1 and not self.scoped and not self.depth and not self.data


@dataclass(slots=True)
class _Literal:
    """A string, number, boolean, null or undefined literal."""

    value: Any
    pos: int


@dataclass(slots=True)
class _Call:
    """A name with its arguments: a mustache's, a block's or a subexpression's."""

    head: _Path | _Literal
    params: list[_Path | _Literal | _Call]
    pos: int


@dataclass(slots=True)
class _Content:
    """Literal text; whitespace control trims `value` and keeps `original`."""

    value: str
    original: str
    left_stripped: bool = False
    right_stripped: bool = False


@dataclass(slots=True)
class _Comment:
    """A comment, kept for whitespace control."""

    strip: tuple[bool, bool]


@dataclass(slots=True)
class _Mustache:
    """`{{call}}`, escaped or not."""

    call: _Call
    escaped: bool
    strip: tuple[bool, bool]


@dataclass(slots=True)
class _Program:
    """A list of statements; `chained` for the program an `{{else if}}` makes."""

    body: list[_Content | _Comment | _Mustache | _Block]
    block_params: list[str] | None = None
    chained: bool = False


@dataclass(slots=True)
class _Block:
    """A block statement, after inversion: `program` runs on success, `inverse` else."""

    call: _Call
    program: _Program | None
    inverse: _Program | None
    open_strip: tuple[bool, bool]
    inverse_strip: tuple[bool, bool]
    close_strip: tuple[bool, bool]
    inverted: bool = False
    block_params: list[str] | None = field(default=None)


@dataclass(slots=True)
class _Open:
    """An opening tag: its call, block parameters and strip flags."""

    call: _Call
    block_params: list[str] | None
    strip: tuple[bool, bool]


def _strip_flags(open_text: str, close_text: str) -> tuple[bool, bool]:
    """Handlebars' stripFlags: `~` right after the opening braces, right before the closing."""
    return open_text[2:3] == "~", close_text[-3:-2] == "~"


def _unquote(token: _Token) -> str:
    """A string literal's value: quotes off, its escaped quotes unescaped."""
    quote_char = token.text[0]
    return token.text[1:-1].replace("\\" + quote_char, quote_char)


_BRACKETED: Final = re.compile("\\[[^\n\r\u2028\u2029]*\\]")


def _segment(text: str) -> str:
    """A path segment: `[...]` literal segments lose their brackets (if on one line)."""
    if _BRACKETED.fullmatch(text):
        return text[1:-1]
    return text


# ---------------------------------------------------------------- Handlebars: parser


_PARAM_STARTS: Final = {"ID", "DATA", "STRING", "NUMBER", "BOOLEAN", "UNDEFINED", "NULL"}
_PROGRAM_ENDS: Final = {"EOF", "OPEN_ENDBLOCK", "INVERSE", "OPEN_INVERSE_CHAIN"}
_UNSUPPORTED_TAGS: Final = {
    "OPEN_PARTIAL": "partials ({{> name}}) are not supported",
    "OPEN_PARTIAL_BLOCK": "partial blocks ({{#> name}}) are not supported",
}


@dataclass(slots=True)
class _InverseChain:
    """What follows a block's program: `{{else}}` and a program, or an `{{else x}}` chain."""

    strip: tuple[bool, bool]
    program: _Program
    chained: bool


class _Parser:
    """Handlebars' grammar over the tokens of one template, with its nesting bounded."""

    def __init__(self, source: str, name: str) -> None:
        self.source, self.name = source, name
        self.tokens = _lex(source, name)
        self.at = 0
        self.depth = 0

    def fail(self, token: _Token, what: str) -> TemplateError:
        """A TemplateError at `token`."""
        return _fail(self.source, self.name, token.pos, what)

    def peek(self, ahead: int = 0) -> _Token:
        """The token `ahead` places on, without taking it."""
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def take(self, kind: str, what: str) -> _Token:
        """The next token, which must be of `kind` (described as `what`)."""
        token = self.peek()
        if token.kind != kind:
            found = repr(token.text) if token.text else "the end of the template"
            raise self.fail(token, f"expected {what}, found {found}")
        self.at += 1
        return token

    def nest(self, token: _Token) -> None:
        """Enters a block or subexpression; TemplateError past the nesting bound."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(token, f"blocks and subexpressions nest deeper than {MAX_NESTING}")

    def parse(self) -> _Program:
        """The whole template."""
        program = self.program()
        token = self.peek()
        if token.kind == "OPEN_ENDBLOCK":
            raise self.fail(token, "{{/...}} closes no open block")
        if token.kind != "EOF":
            raise self.fail(token, f"{token.text!r} is outside any block")
        return program

    def program(self) -> _Program:
        """Statements up to a block's `{{else}}` or close, or the end."""
        body: list[_Content | _Comment | _Mustache | _Block] = []
        while self.peek().kind not in _PROGRAM_ENDS:
            body.append(self.statement())
        return _Program(body)

    def statement(self) -> _Content | _Comment | _Mustache | _Block:
        """One content, comment, mustache or block."""
        token = self.peek()
        self.at += 1
        if token.kind == "CONTENT":
            return _Content(token.text, token.text)
        if token.kind == "COMMENT":
            return _Comment(_strip_flags(token.text, token.text))
        if "*" in token.text and token.kind in ("OPEN", "OPEN_BLOCK"):
            raise self.fail(token, "decorators ({{* x}}) are not supported")
        if token.kind in ("OPEN", "OPEN_UNESCAPED"):
            return self.mustache(token)
        if token.kind in ("OPEN_BLOCK", "OPEN_INVERSE"):
            return self.block(token)
        raise self.fail(token, _UNSUPPORTED_TAGS.get(token.kind, f"unexpected {token.text!r}"))

    def mustache(self, opening: _Token) -> _Mustache:
        """`{{call}}`, `{{{call}}}` or `{{& call}}`."""
        call = self.call(opening.pos)
        if opening.kind == "OPEN_UNESCAPED":
            closing = self.take("CLOSE_UNESCAPED", "'}}}'")
        else:
            closing = self.take("CLOSE", "'}}'")
        escaped = opening.text[2:].lstrip("~")[:1] not in ("{", "&")
        return _Mustache(call, escaped, _strip_flags(opening.text, closing.text))

    def block(self, token: _Token) -> _Block:
        """`{{#call}}...{{/name}}` or `{{^call}}...{{/name}}`, with any `{{else}}`."""
        self.nest(token)
        opening = self.opening(token)
        program = self.program()
        chain = None
        following = self.peek().kind
        if following == "INVERSE" or (
            following == "OPEN_INVERSE_CHAIN" and token.kind != "OPEN_INVERSE"
        ):
            chain = self.inverse_chain()
        close_strip = self.closing(opening)
        self.depth -= 1
        return self.prepare(opening, program, chain, close_strip, token.kind == "OPEN_INVERSE")

    def opening(self, token: _Token) -> _Open:
        """The rest of an opening tag: call, block parameters, `}}`."""
        call = self.call(token.pos)
        params = None
        if self.peek().kind == "OPEN_BLOCK_PARAMS":
            self.at += 1
            params = [self.take("ID", "a block parameter name").text]
            while self.peek().kind == "ID":
                params.append(self.take("ID", "a name").text)
            self.take("CLOSE_BLOCK_PARAMS", "'|'")
        closing = self.take("CLOSE", "'}}'")
        return _Open(call, params, _strip_flags(token.text, closing.text))

    def closing(self, opening: _Open) -> tuple[bool, bool]:
        """`{{/name}}`, which must name the block it closes."""
        token = self.take("OPEN_ENDBLOCK", f"{{{{/{_original(opening.call.head)}}}}}")
        name = self.helper_name()
        closing = self.take("CLOSE", "'}}'")
        if _closing_key(name) != _closing_key(opening.call.head):
            opened = _original(opening.call.head)
            raise self.fail(token, f"{{{{/{_original(name)}}}}} does not close {{{{#{opened}}}}}")
        return _strip_flags(token.text, closing.text)

    def inverse_chain(self) -> _InverseChain:
        """`{{else}}` and a program, or `{{else name ...}}` and a program and more."""
        token = self.peek()
        self.at += 1
        if token.kind == "INVERSE":
            return _InverseChain(_strip_flags(token.text, token.text), self.program(), False)
        self.nest(token)
        opening = self.opening(token)
        program = self.program()
        rest = None
        if self.peek().kind in ("INVERSE", "OPEN_INVERSE_CHAIN"):
            rest = self.inverse_chain()
        close_strip = rest.strip if rest is not None else (False, False)
        inner = self.prepare(opening, program, rest, close_strip, False)
        self.depth -= 1
        return _InverseChain(opening.strip, _Program([inner], chained=True), True)

    @staticmethod
    def prepare(
        opening: _Open,
        program: _Program,
        chain: _InverseChain | None,
        close_strip: tuple[bool, bool],
        inverted: bool,
    ) -> _Block:
        """Handlebars' prepareBlock, including how it hands strip flags down a chain."""
        program.block_params = opening.block_params
        inverse, inverse_strip = None, (False, False)
        if chain is not None:
            if chain.chained:  # as Handlebars does: the next link's close is this close
                link = chain.program.body[0]
                assert isinstance(link, _Block)
                link.close_strip = close_strip
            inverse, inverse_strip = chain.program, chain.strip
        main: _Program | None = program
        if inverted:
            main, inverse = inverse, program
        return _Block(
            opening.call, main, inverse, opening.strip, inverse_strip, close_strip,
            inverted, opening.block_params,
        )  # fmt: skip

    def call(self, pos: int) -> _Call:
        """A name and its arguments; hash arguments are refused."""
        head = self.helper_name()
        params: list[_Path | _Literal | _Call] = []
        while True:
            token = self.peek()
            if token.kind == "ID" and self.peek(1).kind == "EQUALS":
                raise self.fail(token, f"hash arguments ({token.text}=...) are not supported")
            if token.kind == "OPEN_SEXPR":
                params.append(self.subexpression())
            elif token.kind in _PARAM_STARTS:
                params.append(self.helper_name())
            else:
                return _Call(head, params, pos)

    def subexpression(self) -> _Call:
        """`(name args...)`."""
        token = self.take("OPEN_SEXPR", "'('")
        self.nest(token)
        call = self.call(token.pos)
        self.take("CLOSE_SEXPR", "')'")
        self.depth -= 1
        return call

    def helper_name(self) -> _Path | _Literal:
        """A path, `@`-path or literal."""
        token = self.peek()
        self.at += 1
        kind = token.kind
        if kind == "ID":
            return self.path(token, data=False)
        if kind == "DATA":
            return self.path(self.take("ID", "a name after '@'"), data=True)
        if kind == "STRING":
            return _Literal(_unquote(token), token.pos)
        if kind == "NUMBER":
            return _Literal(float(token.text), token.pos)
        if kind in ("BOOLEAN", "UNDEFINED", "NULL"):
            literal = {"true": True, "false": False, "null": None}.get(token.text, _UNDEFINED)
            return _Literal(literal, token.pos)
        found = repr(token.text) if token.text else "the end of the template"
        raise self.fail(token, f"expected a name or a value, found {found}")

    def path(self, first: _Token, *, data: bool) -> _Path:
        """Handlebars' preparePath over `first` and the segments after it."""
        segments = [(first, "")]
        while self.peek().kind == "SEP":
            separator = self.take("SEP", "'.'").text
            segments.append((self.take("ID", f"a name after {separator!r}"), separator))
        original, depth = "@" if data else "", 0
        parts: list[str] = []
        for token, separator in segments:
            text = _unescape_segment(token.text)
            part = _segment(text)
            original += separator + part
            if part in ("..", ".", "this") and part == text:
                if parts:
                    raise self.fail(first, f"invalid path {original!r}: {part!r} inside a path")
                depth += part == ".."
            else:
                parts.append(part)
        return _Path(data, depth, parts, original, first.pos)


def _unescape_segment(text: str) -> str:
    """The lexer's unescaping of `\\]` and `\\\\` inside a `[...]` segment."""
    if text.startswith("["):
        return re.sub(r"\\([\\\]])", r"\1", text)
    return text


def _original(name: _Path | _Literal) -> str:
    """A block's name as written, for messages."""
    if isinstance(name, _Path):
        return name.original
    return _scalar_text(name.value)


def _closing_key(name: _Path | _Literal) -> tuple[Any, ...]:
    """What Handlebars compares to match `{{/name}}` with its block: `original`."""
    if isinstance(name, _Path):
        return ("text", name.original)
    if isinstance(name.value, str):
        return ("text", name.value)
    return ("value", type(name.value).__name__, name.value)


# ---------------------------------------------------------------- Handlebars: whitespace control

# Handlebars' WhitespaceControl, on the same tree: `~` trims whitespace next to a tag, and a
# block, `{{else}}` or comment tag alone on its line takes the line's whitespace with it.
_PREV_LINE: Final = re.compile(rf"\r?\n[{_WS}]*\Z")
_PREV_LINE_ROOT: Final = re.compile(rf"(?:\A|\r?\n)[{_WS}]*\Z")
_NEXT_LINE: Final = re.compile(rf"[{_WS}]*?\r?\n")
_NEXT_LINE_ROOT: Final = re.compile(rf"[{_WS}]*?(?:\r?\n|\Z)")
_LEADING_ALL: Final = re.compile(rf"\A[{_WS}]+")
_LEADING_LINE: Final = re.compile(r"\A[ \t]*\r?\n?")
_TRAILING_ALL: Final = re.compile(rf"[{_WS}]+\Z")
_TRAILING_LINE: Final = re.compile(r"[ \t]+\Z")

_Statement = _Content | _Comment | _Mustache | _Block


@dataclass(slots=True)
class _Strip:
    """What a statement asks of its neighbours: `~` trims and standalone candidacy."""

    open: bool
    close: bool
    open_standalone: bool = False
    close_standalone: bool = False
    inline_standalone: bool = False


def _prev_is_space(body: list[_Statement], i: int | None = None, root: bool = False) -> bool:
    """Whether the statement before `i` (else the last) ends a line with only whitespace."""
    if i is None:
        i = len(body)
    if i - 1 < 0:
        return root
    prev = body[i - 1]
    if not isinstance(prev, _Content):
        return False
    pattern = _PREV_LINE if i - 2 >= 0 or not root else _PREV_LINE_ROOT
    return pattern.search(prev.original) is not None


def _next_is_space(body: list[_Statement], i: int | None = None, root: bool = False) -> bool:
    """Whether the statement after `i` (else the first) starts with whitespace to a newline."""
    if i is None:
        i = -1
    if i + 1 >= len(body):
        return root
    nxt = body[i + 1]
    if not isinstance(nxt, _Content):
        return False
    pattern = _NEXT_LINE if i + 2 < len(body) or not root else _NEXT_LINE_ROOT
    return pattern.match(nxt.original) is not None


def _omit_right(body: list[_Statement], i: int | None = None, multiple: bool = False) -> None:
    """Trims the start of the content after `i` (else the first): all whitespace or a line."""
    at = 0 if i is None else i + 1
    if at >= len(body):
        return
    current = body[at]
    if not isinstance(current, _Content) or (not multiple and current.right_stripped):
        return
    before = current.value
    current.value = (_LEADING_ALL if multiple else _LEADING_LINE).sub("", before, count=1)
    current.right_stripped = current.value != before


def _omit_left(body: list[_Statement], i: int | None = None, multiple: bool = False) -> None:
    """Trims the end of the content before `i` (else the last): all whitespace or spaces."""
    at = len(body) - 1 if i is None else i - 1
    if at < 0:
        return
    current = body[at]
    if not isinstance(current, _Content) or (not multiple and current.left_stripped):
        return
    before = current.value
    current.value = (_TRAILING_ALL if multiple else _TRAILING_LINE).sub("", before, count=1)
    current.left_stripped = current.value != before


def _strip_program(program: _Program, root: bool = False) -> None:
    """Applies `~` and standalone-line rules to a program and everything in it."""
    body = program.body
    for i, current in enumerate(body):
        strip = _strip_of(current)
        if strip is None:
            continue
        prev_space, next_space = _prev_is_space(body, i, root), _next_is_space(body, i, root)
        if strip.close:
            _omit_right(body, i, True)
        if strip.open:
            _omit_left(body, i, True)
        if strip.inline_standalone and prev_space and next_space:
            _omit_right(body, i)
            _omit_left(body, i)
        if strip.open_standalone and prev_space and isinstance(current, _Block):
            _omit_right(_first_program(current).body)
            _omit_left(body, i)
        if strip.close_standalone and next_space and isinstance(current, _Block):
            _omit_right(body, i)
            _omit_left((current.inverse or _first_program(current)).body)


def _first_program(block: _Block) -> _Program:
    """A block's program, or its inverse when it has none (`{{^x}}` without `{{else}}`)."""
    program = block.program or block.inverse
    assert program is not None
    return program


def _strip_of(statement: _Statement) -> _Strip | None:
    """What `statement` asks of its neighbours, stripping inside a block first."""
    if isinstance(statement, _Content):
        return None
    if isinstance(statement, _Mustache):
        return _Strip(*statement.strip)
    if isinstance(statement, _Comment):
        return _Strip(*statement.strip, inline_standalone=True)
    return _strip_block(statement)


def _strip_block(block: _Block) -> _Strip:
    """Handlebars' BlockStatement visit: strips inside, returns the block's candidacy."""
    for inner in (block.program, block.inverse):
        if inner is not None:
            _strip_program(inner)
    program = _first_program(block)
    inverse = block.inverse if block.program is not None else None
    first_inverse = last_inverse = inverse
    if inverse is not None and inverse.chained:
        first_inverse = _chained_link(inverse).program
        while last_inverse is not None and last_inverse.chained:
            last_inverse = _chained_link(last_inverse).program
    strip = _Strip(
        block.open_strip[0],
        block.close_strip[1],
        open_standalone=_next_is_space(program.body),
        close_standalone=_prev_is_space((first_inverse or program).body),
    )
    if block.open_strip[1]:
        _omit_right(program.body, None, True)
    if inverse is not None:
        _strip_inverse(block, program, first_inverse, last_inverse)
    elif block.close_strip[0]:
        _omit_left(program.body, None, True)
    return strip


def _strip_inverse(
    block: _Block, program: _Program, first: _Program | None, last: _Program | None
) -> None:
    """The `~` and standalone rules around a block's `{{else}}`."""
    assert first is not None and last is not None
    if block.inverse_strip[0]:
        _omit_left(program.body, None, True)
    if block.inverse_strip[1]:
        _omit_right(first.body, None, True)
    if block.close_strip[0]:
        _omit_left(last.body, None, True)
    if _prev_is_space(program.body) and _next_is_space(first.body):
        _omit_left(program.body)
        _omit_right(first.body)


def _chained_link(program: _Program) -> _Block:
    """The block an `{{else name}}` program holds."""
    link = program.body[0]
    assert isinstance(link, _Block)
    return link


# ---------------------------------------------------------------- Handlebars: runtime


class _Scope:
    """Where a Handlebars program runs: context, `../` chain, `@` data, block parameters."""

    __slots__ = ("ctx", "data", "depths", "params")

    def __init__(self, ctx: Any, depths: Any, data: dict[str, Any], params: Any) -> None:
        self.ctx = ctx
        self.depths = depths  # (context, parent link) back to the root's (root, None)
        self.data = data
        self.params = params  # (values, parent link) for each program declaring `as |...|`


_Get = Callable[[_Scope, _Run], Any]
_Node = Callable[[_Scope, _Run], None]


def _run_nodes(nodes: tuple[_Node | str, ...], scope: _Scope, run: _Run) -> None:
    """Runs a program's statements: text is written, the rest called; one step each."""
    run.tick(len(nodes))
    out = run.out
    for node in nodes:
        if isinstance(node, str):  # the template's own text: its size is checked once, below
            out.append(node)
            run.size += len(node)
        else:
            node(scope, run)
    run.write("")


def _same_context(context: Any, head: Any) -> bool:
    """Whether entering `context` keeps the `../` chain (Handlebars: `context == depths[0]`)."""
    if context is _NULL_CONTEXT:
        return head is None or head is _NULL_CONTEXT
    return _loose_equal(context, head)


class _Body:
    """A compiled program, entered with a context, `@` data and block parameter values."""

    __slots__ = ("declares", "nodes")

    def __init__(self, nodes: tuple[_Node | str, ...], declares: bool) -> None:
        self.nodes = nodes
        self.declares = declares

    def enter(
        self, scope: _Scope, run: _Run, context: Any, data: dict[str, Any], values: Any = ()
    ) -> None:
        """Runs the program in `context`; a new context extends the `../` chain."""
        if context is scope.ctx and data is scope.data and not self.declares:
            _run_nodes(self.nodes, scope, run)
            return
        depths = scope.depths
        if context is not depths[0] and not _same_context(context, depths[0]):
            depths = (context, depths)
        params = (values, scope.params) if self.declares else scope.params
        _run_nodes(self.nodes, _Scope(context, depths, data, params), run)


def _this(scope: _Scope) -> Any:
    """A helper's `this`: the context, or Handlebars' empty null context."""
    ctx = scope.ctx
    return _NULL_CONTEXT if ctx is None or ctx is _UNDEFINED else ctx


def _enter(body: _Body | None, scope: _Scope, run: _Run, context: Any) -> None:
    """`options.fn(context)` / `options.inverse(context)`: the data stays; no-op if absent."""
    if body is not None:
        body.enter(scope, run, context, scope.data)


def _iterate(value: Any, scope: _Scope, run: _Run, fn: _Body | None) -> int:
    """Handlebars' #each over a list or object; returns how many items it visited."""
    if isinstance(value, list):
        pairs: list[tuple[Any, Any]] = list(enumerate(value))
    elif isinstance(value, dict):
        pairs = [(key, value[key]) for key in _object_keys(value)]
    else:
        return 0
    data = dict(scope.data)
    data["_parent"] = scope.data
    last = len(pairs) - 1
    for index, (key, item) in enumerate(pairs):
        run.tick()
        data["key"], data["index"] = key, index
        data["first"], data["last"] = index == 0, index == last
        if fn is not None:
            fn.enter(scope, run, item, data, [item, key])
    return len(pairs)


def _if_node(cond: _Get, fn: _Body | None, inverse: _Body | None, negate: bool) -> _Node:
    """#if / #unless: JavaScript truthiness, and an empty list is false."""

    def node(scope: _Scope, run: _Run) -> None:
        value = cond(scope, run)
        passed = _truthy(value) and not (isinstance(value, list) and not value)
        _enter(fn if passed != negate else inverse, scope, run, _this(scope))

    return node


def _each_node(items: _Get, fn: _Body | None, inverse: _Body | None) -> _Node:
    """#each: the program per item with @index, @key, @first, @last; else the inverse."""

    def node(scope: _Scope, run: _Run) -> None:
        if _iterate(items(scope, run), scope, run, fn) == 0:
            _enter(inverse, scope, run, _this(scope))

    return node


def _with_node(target: _Get, fn: _Body | None, inverse: _Body | None) -> _Node:
    """#with: the program in the value's context unless the value is empty."""

    def node(scope: _Scope, run: _Run) -> None:
        value = target(scope, run)
        if _is_empty(value):
            _enter(inverse, scope, run, _this(scope))
        elif fn is not None:
            fn.enter(scope, run, value, scope.data, [value])

    return node


def _equal_node(left: _Get, right: _Get, fn: _Body | None, inverse: _Body | None) -> _Node:
    """LaunchDarkly's #equal / #equalWithElse: the program when `left === right`."""

    def node(scope: _Scope, run: _Run) -> None:
        same = _strict_equal(left(scope, run), right(scope, run))
        _enter(fn if same else inverse, scope, run, _this(scope))

    return node


def _section_node(target: _Get, fn: _Body | None, inverse: _Body | None) -> _Node:
    """A block on a plain value (Handlebars' blockHelperMissing), as a Mustache section."""

    def node(scope: _Scope, run: _Run) -> None:
        value = target(scope, run)
        # Handlebars calls blockHelperMissing with `this` the bare context, null included
        if value is True:
            _enter(fn, scope, run, scope.ctx)
        elif value is False or _is_nullish(value) or (isinstance(value, list) and not value):
            _enter(inverse, scope, run, scope.ctx)
        elif isinstance(value, list):
            _iterate(value, scope, run, fn)
        elif fn is not None:
            fn.enter(scope, run, value, scope.data)

    return node


def _value_node(get: _Get, escape: bool) -> _Node:
    """`{{value}}` (HTML-escaped) or `{{{value}}}`."""

    def node(scope: _Scope, run: _Run) -> None:
        value = get(scope, run)
        text = value if value.__class__ is str else _output_text(value, run)
        run.write(_escape_handlebars(text) if escape else text)

    return node


def _resolve(value: Any, parts: tuple[str, ...]) -> Any:
    """Walks `parts` from `value`; a null or undefined on the way is the result."""
    for part in parts:
        if value.__class__ is dict:
            value = value.get(part, _UNDEFINED)
        elif value is None or value is _UNDEFINED:
            return value
        else:
            value = _property(value, part)
    return value


def _resolve_data(value: Any, parts: tuple[str, ...]) -> Any:
    """Walks `parts` from `value` as Handlebars does for `@` data: a falsy value stops."""
    for part in parts:
        if not _truthy(value):
            return value
        value = _property(value, part)
    return value


def _context_getter(depth: int, parts: tuple[str, ...]) -> _Get:
    """A path on the context, or `depth` contexts up (`../`)."""
    if depth == 0 and len(parts) == 1:
        key = parts[0]

        def get_name(scope: _Scope, run: _Run) -> Any:
            ctx = scope.ctx
            if ctx.__class__ is dict:
                return ctx.get(key, _UNDEFINED)
            return _resolve(ctx, parts)

        return get_name

    def get(scope: _Scope, run: _Run) -> Any:
        link = scope.depths
        for _ in range(depth):
            link = link[1]
            if link is None:
                return _UNDEFINED
        return _resolve(scope.ctx if depth == 0 else link[0], parts)

    return get


def _data_getter(depth: int, parts: tuple[str, ...]) -> _Get:
    """An `@` path: `@index`, `@root.x`, `@../key`."""

    def get(scope: _Scope, run: _Run) -> Any:
        frame: Any = scope.data
        for _ in range(depth):
            if not _truthy(frame):
                break
            frame = _property(frame, "_parent")
        return _resolve_data(frame, parts)

    return get


def _param_getter(level: int, index: int, parts: tuple[str, ...]) -> _Get:
    """A block parameter (`as |item key|`) `level` declaring programs up, then `parts`."""

    def get(scope: _Scope, run: _Run) -> Any:
        link = scope.params
        for _ in range(level):
            link = link[1]
        values = link[0]
        return _resolve(values[index] if index < len(values) else _UNDEFINED, parts)

    return get


def _helper_getter(function: Callable[..., Any], args: list[_Get]) -> _Get:
    """A value helper's result over its evaluated arguments."""
    if len(args) == 1:
        (only,) = args
        return lambda scope, run: function(run, only(scope, run))
    return lambda scope, run: function(run, *[arg(scope, run) for arg in args])


# ---------------------------------------------------------------- Handlebars: compiler


class _Compiler:
    """Turns the stripped tree into closures, refusing what this subset leaves out."""

    def __init__(self, source: str, name: str) -> None:
        self.source, self.name = source, name
        self.params: list[list[str]] = []  # block parameter names, innermost first

    def fail(self, pos: int, what: str) -> TemplateError:
        """A TemplateError at `pos`."""
        return _fail(self.source, self.name, pos, what)

    def body(self, program: _Program) -> _Body:
        """A program's closures; its block parameters are in scope inside it."""
        declares = program.block_params is not None
        if declares:
            self.params.insert(0, program.block_params or [])
        nodes: list[_Node | str] = []
        for statement in program.body:
            node = self.statement(statement)
            if isinstance(node, str) and nodes and isinstance(nodes[-1], str):
                nodes[-1] += node  # adjacent text (around a comment) written once
            elif node is not None:
                nodes.append(node)
        if declares:
            self.params.pop(0)
        return _Body(tuple(nodes), declares)

    def statement(self, statement: _Statement) -> _Node | str | None:
        """One statement's closure, its text, or nothing."""
        if isinstance(statement, _Content):
            return statement.value or None
        if isinstance(statement, _Comment):
            return None
        if isinstance(statement, _Mustache):
            return self.mustache(statement)
        return self.block(statement)

    def head(self, call: _Call) -> tuple[_Path, str | None]:
        """The called path (a literal name read as a path) and the helper it names, if any."""
        head = call.head
        if isinstance(head, _Literal):
            text = _scalar_text(head.value)
            head = _Path(False, 0, [text], text, head.pos)
        if head.simple and self.find_param(head.parts[0]) is None:
            name = head.parts[0]
            if name in _BLOCK_HELPERS or name in _VALUE_HELPERS:
                return head, name
            if name in _UNSUPPORTED_HELPERS:
                raise self.fail(head.pos, f"the {name} helper is not supported")
        if call.params:
            raise self.fail(head.pos, f"{head.original} is not a helper this renderer knows")
        return head, None

    def mustache(self, mustache: _Mustache) -> _Node:
        """`{{value}}` or `{{helper args}}`."""
        path, helper = self.head(mustache.call)
        if helper is None:
            return _value_node(self.path(path), mustache.escaped)
        if helper not in _VALUE_HELPERS:
            raise self.fail(path.pos, f"{helper} is a block helper: write {{{{#{helper} ...}}}}")
        return _value_node(self.helper(mustache.call, helper, _VALUE_HELPERS), mustache.escaped)

    def subexpression(self, call: _Call) -> _Get:
        """`(helper args)`."""
        path, helper = self.head(call)
        helpers = _VALUE_HELPERS | _EQUAL_VALUES
        if helper is None or helper not in helpers:
            raise self.fail(path.pos, f"{path.original} cannot be called in a subexpression")
        return self.helper(call, helper, helpers)

    def helper(
        self, call: _Call, name: str, helpers: Mapping[str, tuple[int, Callable[..., Any]]]
    ) -> _Get:
        """A value helper's getter, its number of arguments checked."""
        arity, function = helpers[name]
        self.check_arity(call, name, arity)
        return _helper_getter(function, [self.arg(param) for param in call.params])

    def check_arity(self, call: _Call, name: str, arity: int) -> None:
        """TemplateError unless `call` passes `arity` arguments."""
        if len(call.params) != arity:
            plural = "" if arity == 1 else "s"
            raise self.fail(
                call.pos, f"{name} takes {arity} argument{plural}, not {len(call.params)}"
            )

    def block(self, block: _Block) -> _Node:
        """A block helper, or a section on a plain value."""
        path, helper = self.head(block.call)
        if helper is not None and helper not in _BLOCK_HELPERS:
            raise self.fail(path.pos, f"{helper} is not a block helper: write {{{{{helper} ...}}}}")
        if block.block_params is not None and (helper not in ("each", "with") or block.inverted):
            raise self.fail(path.pos, "block parameters (as |x|) need {{#each}} or {{#with}}")
        fn = self.body(block.program) if block.program is not None else None
        inverse = self.body(block.inverse) if block.inverse is not None else None
        if helper is None:
            return _section_node(self.path(path), fn, inverse)
        self.check_arity(block.call, helper, _BLOCK_HELPERS[helper])
        args = [self.arg(param) for param in block.call.params]
        if helper in ("if", "unless"):
            return _if_node(args[0], fn, inverse, negate=helper == "unless")
        if helper == "each":
            return _each_node(args[0], fn, inverse)
        if helper == "with":
            return _with_node(args[0], fn, inverse)
        return _equal_node(args[0], args[1], fn, inverse)

    def arg(self, param: _Path | _Literal | _Call) -> _Get:
        """An argument's getter: a literal, a path or a subexpression."""
        if isinstance(param, _Literal):
            value = param.value
            return lambda scope, run: value
        if isinstance(param, _Call):
            return self.subexpression(param)
        return self.path(param)

    def find_param(self, name: str) -> tuple[int, int] | None:
        """(declaring programs up, index) of a block parameter in scope, if `name` is one."""
        for level, names in enumerate(self.params):
            if name in names:
                return level, names.index(name)
        return None

    def path(self, path: _Path) -> _Get:
        """A path's getter: block parameter, `@` data or context."""
        parts = tuple(path.parts)
        if parts and not path.scoped:
            found = self.find_param(parts[0])
            if found is not None:
                return _param_getter(found[0], found[1], parts[1:])
        if path.data and parts:
            return _data_getter(path.depth, parts)
        return _context_getter(path.depth, parts)


def _compile_handlebars(source: str, name: str) -> tuple[_Node | str, ...]:
    """A Handlebars template's root program, compiled."""
    nul = source.find("\x00")
    if nul >= 0:
        raise _fail(source, name, nul, "a NUL character (Handlebars' lexer stops at it)")
    program = _Parser(source, name).parse()
    _strip_program(program, root=True)
    return _Compiler(source, name).body(program).nodes


# ---------------------------------------------------------------- Mustache (mustache.js 4.2)

_WS_INLINE: Final = _WS.replace("\n", "")
_M_OPEN: Final = re.compile(rf"\{{\{{[{_WS}]*")
_M_TYPE: Final = re.compile(r"[#^/>{&=!]")
_M_SPACE: Final = re.compile(rf"[{_WS}]*")
_M_CLOSE: Final = re.compile(rf"[{_WS}]*\}}\}}")
_M_CLOSE_CURLY: Final = re.compile(rf"[{_WS}]*\}}\}}\}}")
_M_CURLY: Final = re.compile(rf"[{_WS}]*\}}")
_M_TEXT: Final = re.compile(rf"\n|[{_WS_INLINE}]+|[^{_WS}]+")

_MToken = tuple[str, str, int]  # (type, text or name, offset): "text", "name", "&", "#", ...
_MStack = tuple[Any, Any]  # (view, parent link or None)
_MNode = Callable[[_MStack, _Run], None]


def _skip(pattern: re.Pattern[str], source: str, pos: int) -> int:
    """mustache.js's Scanner.scan: the offset after `pattern` matched at `pos`, if it does."""
    match = pattern.match(source, pos)
    return pos if match is None else match.end()


def _scan_until(source: str, pos: int, pattern: re.Pattern[str]) -> tuple[str, int]:
    """mustache.js's Scanner.scanUntil: the text before `pattern` (or all), and where it stops."""
    match = pattern.search(source, pos)
    end = len(source) if match is None else match.start()
    return source[pos:end], end


class _MustacheLines:
    """mustache.js's parseTemplate: tokens, with standalone lines' whitespace removed."""

    def __init__(self, source: str, name: str) -> None:
        self.source, self.name = source, name
        self.tokens: list[_MToken | None] = []
        self.spaces: list[int] = []  # whitespace tokens on the current line
        self.has_tag = False
        self.non_space = False

    def end_line(self) -> None:
        """At a newline (or the end): a line of only tags and whitespace loses the whitespace."""
        if self.has_tag and not self.non_space:
            for index in self.spaces:
                self.tokens[index] = None
        self.spaces.clear()
        self.has_tag = self.non_space = False

    def text(self, start: int, end: int) -> None:
        """Text between tags, a line at a time."""
        for piece in _M_TEXT.finditer(self.source, start, end):
            text = piece.group()
            if text[0] in _WS_CHARS:
                self.spaces.append(len(self.tokens))
            else:
                self.non_space = True
            self.tokens.append(("text", text, piece.start()))
            if text == "\n":
                self.end_line()

    def scan(self) -> list[_MToken | None]:
        """All the tokens of the template."""
        pos, source = 0, self.source
        while pos < len(source):
            opening = _M_OPEN.search(source, pos)
            self.text(pos, len(source) if opening is None else opening.start())
            if opening is None:
                break
            pos = self.tag(opening.start(), opening.end())
        self.end_line()
        return self.tokens

    def tag(self, start: int, pos: int) -> int:
        """The tag opened at `start`; returns the offset after it."""
        self.has_tag = True
        kind_match = _M_TYPE.match(self.source, pos)
        kind = kind_match.group() if kind_match else "name"
        pos = _skip(_M_SPACE, self.source, pos + (1 if kind_match else 0))
        if kind == "{":
            value, pos = _scan_until(self.source, pos, _M_CLOSE_CURLY)
            pos = _skip(_M_CURLY, self.source, pos)
            pos = _scan_until(self.source, pos, _M_CLOSE)[1]
            kind = "&"
        else:
            value, pos = _scan_until(self.source, pos, _M_CLOSE)
        closing = _M_CLOSE.match(self.source, pos)
        if closing is None:
            raise _fail(self.source, self.name, start, "the tag is not closed with }}")
        if kind in (">", "="):
            what = "partials ({{> name}})" if kind == ">" else "set delimiters ({{=<% %>=}})"
            raise _fail(self.source, self.name, start, f"{what} are not supported")
        if kind in ("name", "&"):
            self.non_space = True
        self.tokens.append((kind, value, start))
        return closing.end()


@dataclass(slots=True)
class _MSection:
    """A section or inverted section and what it holds."""

    kind: str
    name: str
    pos: int
    children: list[_MToken | _MSection] = field(default_factory=list)


def _mustache_tree(source: str, name: str) -> list[_MToken | _MSection]:
    """mustache.js's nestTokens: sections hold their tokens; names must match."""
    root: list[_MToken | _MSection] = []
    open_sections: list[_MSection] = []
    current = root
    for token in _MustacheLines(source, name).scan():
        if token is None or token[0] == "!":
            continue
        kind, value, pos = token
        if kind in ("#", "^"):
            if len(open_sections) >= MAX_NESTING:
                raise _fail(source, name, pos, f"sections nest deeper than {MAX_NESTING}")
            section = _MSection(kind, value, pos)
            current.append(section)
            open_sections.append(section)
            current = section.children
        elif kind == "/":
            if not open_sections:
                raise _fail(source, name, pos, f"{{{{/{value}}}}} closes no open section")
            opened = open_sections.pop()
            if opened.name != value:
                raise _fail(
                    source, name, pos, f"{{{{/{value}}}}} does not close {{{{#{opened.name}}}}}"
                )
            current = open_sections[-1].children if open_sections else root
        else:
            current.append(token)
    if open_sections:
        opened = open_sections[-1]
        raise _fail(source, name, opened.pos, f"the section {opened.name!r} is not closed")
    return root


def _primitive_has(value: Any, key: str) -> bool:
    """mustache.js's primitiveHasOwnProperty: a string's length or index."""
    return isinstance(value, str) and _string_property(value, key) is not _UNDEFINED


def _mustache_lookup(name: str) -> Callable[[_MStack], Any]:
    """mustache.js's Context.lookup: up the context stack to the first view that has it."""
    if name == ".":
        return lambda stack: stack[0]
    if name.find(".") > 0:
        return _mustache_dotted(name.split("."))

    def lookup(stack: Any) -> Any:
        while stack is not None:
            view = stack[0]
            if view.__class__ is dict:
                if name in view:
                    return view[name]
            elif _is_nullish(view):  # mustache.js reads view[name] and throws a TypeError
                raise RenderError(f"mustache.js cannot look up {name!r} in a null list item")
            elif _has_property(view, name):
                return _property(view, name)
            stack = stack[1]
        return _UNDEFINED

    return lookup


def _mustache_dotted(names: list[str]) -> Callable[[_MStack], Any]:
    """A dotted name: found in a view only if its last segment is there."""
    last = len(names) - 1

    def lookup(stack: Any) -> Any:
        while stack is not None:
            value, hit = stack[0], False
            for index, part in enumerate(names):
                if _is_nullish(value):
                    break
                if index == last:
                    hit = _has_property(value, part) or _primitive_has(value, part)
                value = _property(value, part)
            if hit:
                return value
            stack = stack[1]
        return _UNDEFINED

    return lookup


def _run_mustache(nodes: tuple[_MNode | str, ...], stack: _MStack, run: _Run) -> None:
    """Runs a list of Mustache nodes, one step each."""
    run.tick(len(nodes))
    out = run.out
    for node in nodes:
        if isinstance(node, str):  # the template's own text: its size is checked once, below
            out.append(node)
            run.size += len(node)
        else:
            node(stack, run)
    run.write("")


def _mustache_section(
    lookup: Callable[[_MStack], Any], nodes: tuple[_MNode | str, ...], inverted: bool
) -> _MNode:
    """A section (lists iterate, truthy values push) or an inverted section."""

    def section(stack: _MStack, run: _Run) -> None:
        value = lookup(stack)
        if not _truthy(value):
            return
        if isinstance(value, list):
            for item in value:
                run.tick()
                _run_mustache(nodes, (item, stack), run)
        elif value is True:
            _run_mustache(nodes, stack, run)
        else:
            _run_mustache(nodes, (value, stack), run)

    def inverted_section(stack: _MStack, run: _Run) -> None:
        value = lookup(stack)
        if not _truthy(value) or (isinstance(value, list) and not value):
            _run_mustache(nodes, stack, run)

    return inverted_section if inverted else section


def _mustache_value(lookup: Callable[[_MStack], Any], escape: bool) -> _MNode:
    """`{{name}}` (escaped as mustache.js does) or `{{{name}}}` / `{{&name}}`."""

    def value_node(stack: _MStack, run: _Run) -> None:
        value = lookup(stack)
        if not _is_nullish(value):
            text = _js_string(value, run)
            run.write(_escape_mustache(text) if escape else text)

    return value_node


def _compile_mustache(items: list[_MToken | _MSection]) -> tuple[_MNode | str, ...]:
    """Mustache tokens to closures, adjacent text joined."""
    nodes: list[_MNode | str] = []
    for item in items:
        if isinstance(item, _MSection):
            children = _compile_mustache(item.children)
            nodes.append(_mustache_section(_mustache_lookup(item.name), children, item.kind == "^"))
        elif item[0] == "text":
            if nodes and isinstance(nodes[-1], str):
                nodes[-1] += item[1]
            else:
                nodes.append(item[1])
        else:
            nodes.append(_mustache_value(_mustache_lookup(item[1]), item[0] == "name"))
    return tuple(nodes)


# ---------------------------------------------------------------- the public surface


class Template:
    """A compiled template; `render` may be called any number of times, from any thread."""

    __slots__ = ("_mustache", "_nodes", "name")

    def __init__(self, name: str, nodes: tuple[Any, ...], mustache: bool) -> None:
        self.name = name
        self._nodes = nodes
        self._mustache = mustache

    def render(
        self, context: Mapping[str, Any], *, max_bytes: int = 1_000_000, max_steps: int = 200_000
    ) -> str:
        """The template over `context`; RenderError past `max_steps` steps or `max_bytes`
        characters of output (characters, not UTF-8 bytes: a cheap bound that is never lower).
        """
        root = context if isinstance(context, dict) else dict(context)
        run = _Run(max_bytes, max_steps)
        try:
            if self._mustache:
                _run_mustache(self._nodes, (root, None), run)
            else:
                scope = _Scope(root, (root, None), {"root": root}, None)
                _run_nodes(self._nodes, scope, run)
        except RecursionError as exc:  # nesting is bounded at compile; this is a last guard
            raise RenderError(f"{self.name}: the render nests too deeply") from exc
        return "".join(run.out)


def compile_template(
    source: str, *, name: str = "template", mustache: bool = False, max_source: int = 256_000
) -> Template:
    """Compiles Handlebars (LaunchDarkly's subset) or, with `mustache`, mustache.js source.

    TemplateError names `name:line:column` and the fault: a syntax error, a feature outside
    the subset, a source over `max_source` characters, nesting deeper than 64.
    """
    if len(source) > max_source:
        raise TemplateError(
            f"{name}: the template has {len(source)} characters, over the limit of {max_source}"
        )
    if mustache:
        nodes: tuple[Any, ...] = _compile_mustache(_mustache_tree(source, name))
    else:
        nodes = _compile_handlebars(source, name)
    return Template(name, nodes, mustache)
