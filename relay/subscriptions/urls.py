"""A webhook's URL: what it may be, its origin, and its query values masked and unmasked.

The values of a URL's query are credentials (`?code=s3cr3t`): each is shown as `MASK` in
every answer, to every role. Writing a masked URL back keeps the stored query value only
at the same origin (scheme, host, port) and under the same name at the same position; a
moved URL needs its values given again. `MASK` lives here, the lowest of the config's
modules, so that the header rules and the config itself share one mask.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

import idna

# what every credential looks like in an answer: nothing of the value, not even its length
MASK = "********"
MAX_URL = 2048

_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int | None]


def origin(url: str) -> Origin:
    """(scheme, host, port) of a valid URL, default ports made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def url_problem(value: Any) -> str | None:
    """Why `value` is not a webhook URL (http or https, a host, no credentials); None if it is."""
    if value is None:
        return "is required"
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > MAX_URL or value != value.strip() or any(c.isspace() for c in value):
        return f"must be a URL without spaces, at most {MAX_URL} characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        return f"is not a valid URL: {exc}"
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        return "must be an http or https URL"
    if not parts.hostname:
        return "must have a host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials; send them in config.headers"
    if not parts.netloc.isascii():
        return _ascii_host_problem(parts)
    return None


def masked_url(url: str) -> str:
    """`https://h/x?team=ops&code=s3cr3t` -> `https://h/x?team=********&code=********`."""
    base, parts, fragment = _split_query(url)
    if parts is None:
        return url
    return f"{base}?{'&'.join(_masked_part(part) for part in parts)}{fragment}"


def query_values(url: str) -> list[str]:
    """The values of `url`'s query as written (a bare part, `?token`, is all value)."""
    return [_part_value(part) for part in _query_parts(url)]


def unmasked_url(url: str, stored_url: str | None) -> str | None:
    """`url` with masked query values taken from `stored_url`; None when that is not allowed."""
    base, query, fragment = _split_query(url)
    parts = query or []
    if not any(_is_masked(part) for part in parts):
        return url
    if stored_url is None or origin(url) != origin(stored_url):
        return None
    stored_parts = _query_parts(stored_url)
    resolved: list[str] = []
    for index, part in enumerate(parts):
        if _is_masked(part):
            if index >= len(stored_parts) or _part_name(stored_parts[index]) != _part_name(part):
                return None
            part = stored_parts[index]
        resolved.append(part)
    return f"{base}?{'&'.join(resolved)}{fragment}"


def _ascii_host_problem(parts: SplitResult) -> str:
    """A host outside ASCII cannot be sent in a Host header: name its IDNA (punycode) form."""
    host = parts.netloc.rsplit(":", 1)[0] if parts.port is not None else parts.netloc
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        return f"its host must be ASCII, and {host!r} has no IDNA form: {exc}"
    # the host alone: the rest of the URL may hold credentials (query values)
    return f"its host must be ASCII: write it in its IDNA (punycode) form, {ascii_host}"


def _split_query(url: str) -> tuple[str, list[str] | None, str]:
    """`url` as what precedes its query, the query's parts (None: no query), `#fragment`."""
    main, hash_sign, fragment = url.partition("#")
    base, question, query = main.partition("?")
    return base, query.split("&") if question else None, hash_sign + fragment


def _query_parts(url: str) -> list[str]:
    return _split_query(url)[1] or []


def _part_name(part: str) -> str | None:
    name, equals, _ = part.partition("=")
    return name if equals else None  # a bare part (`?token`) is all value


def _part_value(part: str) -> str:
    name, equals, value = part.partition("=")
    return value if equals else name


def _masked_part(part: str) -> str:
    name = _part_name(part)
    if not _part_value(part):
        return part
    return MASK if name is None else f"{name}={MASK}"


def _is_masked(part: str) -> bool:
    return unquote(_part_value(part)) == MASK
