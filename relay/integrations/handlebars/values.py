"""Values as JavaScript sees them: text of values, truthiness, equality, properties, escaping."""

from __future__ import annotations

import math
import re
from typing import Any, Final

from relay.integrations.handlebars.bounds import MAX_NESTING, Run
from relay.integrations.handlebars.errors import RenderError


class _Undefined:
    """JavaScript's `undefined`: a missing value, unlike JSON's null (None)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = _Undefined()
# Handlebars passes this empty object as `this` where the context is null or undefined
NULL_CONTEXT: Final[dict[str, Any]] = {}
_MAX_SAFE_INTEGER: Final = 2**53
# JavaScript's \s, used for every whitespace test (Python's \s differs: \x1c-\x1f, \ufeff)
WS: Final = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
WS_CHARS: Final = frozenset(
    WS.replace("\u2000-\u200a", "") + "".join(map(chr, range(0x2000, 0x200B)))
)


def is_nullish(value: Any) -> bool:
    """True for null and undefined (JavaScript's `value == null`)."""
    return value is None or value is UNDEFINED


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_float(value: int | float) -> float:
    """The double JavaScript holds for `value` (JSON.parse rounds big integers the same way)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _number_text(value: int | float) -> str:
    """JavaScript's String(number): shortest round-trip digits, exponent past 1e21 or 1e-7."""
    if isinstance(value, int) and -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
        return str(value)
    number = to_float(value)
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


def scalar_text(value: Any) -> str:
    """JavaScript's String(value) for anything but a list."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(value)
    if isinstance(value, dict):
        return "[object Object]"
    raise RenderError(f"cannot render a value of type {type(value).__name__}")


def js_string(value: Any, run: Run, depth: int = 0) -> str:
    """JavaScript's String(value): lists join their elements with "," (null ones empty)."""
    if not isinstance(value, list):
        return scalar_text(value)
    if depth >= MAX_NESTING:
        raise RenderError(f"a list nested deeper than {MAX_NESTING} levels")
    run.tick(len(value))
    return ",".join("" if is_nullish(item) else js_string(item, run, depth + 1) for item in value)


def output_text(value: Any, run: Run) -> str:
    """The text a value renders as: "" for null and undefined, else String(value)."""
    if value.__class__ is str:
        return value
    if is_nullish(value):
        return ""
    return js_string(value, run)


def truthy(value: Any) -> bool:
    """JavaScript truthiness: false, 0, NaN, "", null and undefined are false."""
    if value is True or value.__class__ in (dict, list):
        return True
    if isinstance(value, str):
        return value != ""
    if is_nullish(value) or value is False:
        return False
    if is_number(value):
        return bool(value == value and value != 0)
    return True


def is_empty(value: Any) -> bool:
    """Handlebars' isEmpty: falsy but not 0, or an empty list."""
    if isinstance(value, list):
        return not value
    return not truthy(value) and not (is_number(value) and value == 0)


def strict_equal(left: Any, right: Any) -> bool:
    """JavaScript's `left === right` (objects and arrays by identity)."""
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return left is right
    if is_nullish(left) or is_nullish(right):
        return left is right
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if is_number(left) and is_number(right):
        return to_float(left) == to_float(right)
    return type(left) is type(right) and bool(left == right)


_NUMERIC_STRING = re.compile(
    rf"[{WS}]*([+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Infinity)|0[xX][0-9a-fA-F]+)?[{WS}]*"
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


def loose_equal(left: Any, right: Any) -> bool:
    """JavaScript's `left == right` for scalars; containers only equal themselves."""
    if left is right:
        return True
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return False
    if is_nullish(left) or is_nullish(right):
        return is_nullish(left) and is_nullish(right)
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return _as_number(left) == _as_number(right)


def _as_number(value: Any) -> float:
    """ToNumber for a bool, number or string."""
    if isinstance(value, str):
        return _string_number(value)
    return to_float(value)


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


def string_property(text: str, key: str) -> Any:
    """`text[key]` in JavaScript: its UTF-16 length, or the code unit at an index."""
    units = _utf16(text)
    size = len(units) if isinstance(units, str) else len(units) // 2
    if key == "length":
        return size
    index = _array_index(key)
    if index is None or index >= size:
        return UNDEFINED
    if isinstance(units, str):
        return units[index]
    return units[2 * index : 2 * index + 2].decode("utf-16-le", "surrogatepass")


def property_of(parent: Any, key: str) -> Any:
    """`parent[key]` for an own property of a JSON-like value, else undefined."""
    if isinstance(parent, dict):
        return parent.get(key, UNDEFINED)
    if isinstance(parent, list):
        if key == "length":
            return len(parent)
        index = _array_index(key)
        return parent[index] if index is not None and index < len(parent) else UNDEFINED
    if isinstance(parent, str):
        return string_property(parent, key)
    return UNDEFINED


def has_property(parent: Any, key: str) -> bool:
    """mustache.js's `key in parent` for an object or array (own properties here)."""
    if isinstance(parent, dict):
        return key in parent
    if isinstance(parent, list):
        return property_of(parent, key) is not UNDEFINED or key == "length"
    return False


def object_keys(value: dict[str, Any]) -> list[str]:
    """Object.keys order: array-index keys ascending first, then the rest as inserted."""
    indexes = [key for key in value if _array_index(key) is not None]
    if not indexes:
        return list(value)
    indexes.sort(key=int)
    return indexes + [key for key in value if _array_index(key) is None]


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


def escape_handlebars(text: str) -> str:
    """Handlebars 4's escapeExpression on a string."""
    if _HANDLEBARS_UNSAFE.search(text) is None:
        return text
    return text.translate(_HANDLEBARS_ESCAPES)


def escape_mustache(text: str) -> str:
    """mustache.js's escapeHtml on a string."""
    if _MUSTACHE_UNSAFE.search(text) is None:
        return text
    return text.translate(_MUSTACHE_ESCAPES)
