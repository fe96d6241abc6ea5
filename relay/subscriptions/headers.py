"""The header rules of a webhook config: names, values, media types, and `customHeaders`.

A name is an RFC 9110 token that the relay does not set itself; a value is visible ASCII
with spaces and tabs only between characters, as the sender (workers/http_client.py)
writes headers. `customHeaders` is Unleash's webhook addon parameter: the JSON *text* of
an object of header names to string values, each checked by the same rules.
"""

from __future__ import annotations

import json
import re
from typing import Any

from relay.subscriptions.urls import MASK

MAX_HEADERS = 20
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 1024
MAX_CONTENT_TYPE = 256
# MAX_HEADERS names and values with JSON's quotes, commas and spacing fit well within this
MAX_CUSTOM_HEADERS = 32 * 1024

# RFC 9110: a field name is a token; a value is visible ASCII with spaces and tabs inside.
# The sender (workers/http_client.py) writes headers as ASCII and refuses anything else.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?")
# RFC 9110 8.3.1: type "/" subtype *( OWS ";" OWS [ token "=" ( token / quoted-string ) ] )
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*"'
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN.pattern}/{_TOKEN.pattern}"
    rf"(?:[ \t]*;[ \t]*(?:{_TOKEN.pattern}=(?:{_TOKEN.pattern}|{_QUOTED}))?)*"
)
# The relay sets these itself (framing, body, signature); a static copy would break delivery.
_REFUSED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "http2-settings",
        "expect",
        "accept-encoding",
        "x-ld-signature",
    }
)
_REFUSED_PREFIXES = ("webhook-", "x-relay-", "proxy-")


def parse_custom_headers(text: object) -> dict[str, str]:
    """Unleash's `customHeaders` (JSON text of an object of strings) as headers.

    The rules of `headers` apply to each name and value; ValueError says what is wrong.
    """
    if not isinstance(text, str):
        raise ValueError("must be a string: a JSON object of header names to string values")
    if len(text) > MAX_CUSTOM_HEADERS:
        raise ValueError(f"must be at most {MAX_CUSTOM_HEADERS} characters")
    try:
        parsed = json.loads(text, object_pairs_hook=_unique_names)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise ValueError("is not a JSON object of strings: nested too deeply") from exc
    if not isinstance(parsed, dict):
        raise ValueError("must be a JSON object of header names to string values")
    if len(parsed) > MAX_HEADERS:
        raise ValueError(f"{len(parsed)} headers; at most {MAX_HEADERS}")
    seen: set[str] = set()
    for name, value in parsed.items():
        reason = header_problem(name, value, seen)
        if reason is None and value == MASK:
            reason = f"is {MASK}: to keep the stored customHeaders, write all of it as {MASK}"
        if reason is not None:
            raise ValueError(f"header {name!r} {reason}")
    return parsed


def header_problem(name: str, value: Any, seen: set[str]) -> str | None:
    """Why a header cannot be configured; None if it can. Adds its name to `seen`."""
    lowered = name.lower()
    if len(name) > MAX_HEADER_NAME or not _TOKEN.fullmatch(name):
        return f"is not a header name (RFC 9110 token, at most {MAX_HEADER_NAME} characters)"
    if lowered == "content-type":
        return "is set from config.contentType"
    if lowered in _REFUSED_HEADERS or lowered.startswith(_REFUSED_PREFIXES):
        return "is set by the relay or a hop-by-hop header, and cannot be configured"
    if lowered in seen:
        return "is given twice (header names are case-insensitive)"
    seen.add(lowered)
    if not isinstance(value, str):
        return "must be a string"
    return header_value_problem(value)


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as a header value; None if it can."""
    if len(value) > MAX_HEADER_VALUE or not _VALUE.fullmatch(value):
        return (
            f"must be at most {MAX_HEADER_VALUE} visible ASCII characters, with spaces and "
            "tabs only between them (no line breaks, control characters or non-ASCII)"
        )
    return None


def is_media_type(value: str) -> bool:
    """Whether `value` is a Content-Type of at most MAX_CONTENT_TYPE characters."""
    # the length first: the pattern only ever runs over a bounded string
    return len(value) <= MAX_CONTENT_TYPE and _MEDIA_TYPE.fullmatch(value) is not None


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members; a name given twice is an error (json keeps the last)."""
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise ValueError(f"header {name!r} is given twice")
        found[name] = value
    return found
