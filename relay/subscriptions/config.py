"""The `config` of a `webhook` subscription: validation, secret generation and masking.

Fields: `url` (http or https), `secret` (generated when absent), `format` (`unleash` or
`launchdarkly`), `headers` (static headers added to every delivery), and the parameters of
Unleash's webhook addon under Unleash's names, so an addon's config moves over as is:
`contentType` (the deliveries' Content-Type; application/json when not set),
`authorization` (the Authorization header), `customHeaders` (a JSON *string* of an object
of header names to string values) and `bodyTemplate` (a Mustache template of the body).
An addon parameter given as "" is not set, as in Unleash. A header name is configured in
one place only (`headers`, `customHeaders`, or `authorization` for Authorization): where
Unleash lets customHeaders silently win, relay answers 400.

A secret is Standard Webhooks' `whsec_` + base64 of 24 to 64 bytes, or, as LaunchDarkly
allows, any 1 to 512 printable characters (`my-very-secret-value-123`). A receiver checks
`webhook-signature` with the standardwebhooks library given a `whsec_` secret as is and any
other secret as its UTF-8 bytes (`Webhook(secret.encode())`: given a plain string, the
library base64-decodes it into another key); `X-LD-Signature` is the hex HMAC-SHA256 of
the body keyed by the secret's UTF-8 bytes, whatever its form.

Every header value is a credential, as are the secret, `authorization`, `customHeaders`
(the whole string) and the values of the URL's query: each is shown as `MASK` in every
answer, to every role. Writing `MASK` back keeps the value stored under that same name, so
a client can GET, edit and PUT back a whole config. Stored header, authorization,
customHeaders and query values never follow the URL to another origin (scheme, host,
port): moving it means giving them again in the same request. The signing secret does
follow a new URL (it is never sent, only the signatures it makes); a masked query value
also needs its name at the same position as stored.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

import idna

from relay.errors import FieldProblem, InvalidRequestError
from relay.integrations.handlebars import TemplateError, compile_template

INTEGRATION_KEY = "webhook"
FORMATS = ("unleash", "launchdarkly")
SECRET_PREFIX = "whsec_"
# Unleash's webhook addon parameters, spelled as Unleash spells them
ADDON_FIELDS = ("contentType", "authorization", "customHeaders", "bodyTemplate")
FIELDS = ("url", "secret", "format", "headers", *ADDON_FIELDS)
DEFAULT_CONTENT_TYPE = "application/json"
# what every credential looks like in an answer: nothing of the value, not even its length
MASK = "********"

MAX_URL = 2048
MAX_HEADERS = 20
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 1024
MAX_SECRET = 512
MAX_CONTENT_TYPE = 256
# MAX_HEADERS names and values with JSON's quotes, commas and spacing fit well within this
MAX_CUSTOM_HEADERS = 32 * 1024
MAX_BODY_TEMPLATE = 64 * 1024  # bytes of UTF-8

_CREDENTIAL_FIELDS = ("secret", "authorization", "customHeaders")

_SECRET_BYTES = (24, 64)
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
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int | None]


@dataclass(frozen=True)
class WebhookConfig:
    """A validated config, and whether this request had the relay generate its secret."""

    config: dict[str, Any]
    secret_generated: bool


def generate_secret() -> str:
    """A new signing secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def masked_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as shown to clients: every credential and URL query value masked."""
    shown = dict(config)
    for name in _CREDENTIAL_FIELDS:
        if shown.get(name):
            shown[name] = MASK
    if isinstance(shown.get("url"), str):
        shown["url"] = masked_url(shown["url"])
    headers = shown.get("headers")
    if isinstance(headers, dict):
        shown["headers"] = dict.fromkeys(headers, MASK)
    return shown


def masked_url(url: str) -> str:
    """`https://h/x?team=ops&code=s3cr3t` -> `https://h/x?team=********&code=********`."""
    base, parts, fragment = _split_query(url)
    if parts is None:
        return url
    return f"{base}?{'&'.join(_masked_part(part) for part in parts)}{fragment}"


def credentials(config: Mapping[str, Any]) -> list[str]:
    """Every stored value answers never show: secret, authorization, header and query values."""
    found = [str(v) for v in (config.get("headers") or {}).values() if v]
    found += [str(config[name]) for name in ("secret", "authorization") if config.get(name)]
    custom = config.get("customHeaders")
    if custom:
        try:
            found += parse_custom_headers(custom).values()
        except ValueError:
            found.append(str(custom))  # not headers, yet stored as a credential: all of it
    url = config.get("url")
    if isinstance(url, str):
        found += [_part_value(part) for part in _query_parts(url)]
    return [value for value in found if value]


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
        reason = _header_problem(name, value, seen)
        if reason is None and value == MASK:
            reason = f"is {MASK}: to keep the stored customHeaders, write all of it as {MASK}"
        if reason is not None:
            raise ValueError(f"header {name!r} {reason}")
    return parsed


def validate_config(raw: Any, *, stored: Mapping[str, Any] | None = None) -> WebhookConfig:
    """Validate a config (with masked values resolved against `stored`); 400 with every problem."""
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(
            "config must be an object", [FieldProblem("config", "must be an object")]
        )
    problems: list[FieldProblem] = []
    for name in raw:
        if name not in FIELDS:
            problems.append(
                FieldProblem(
                    f"config.{name}", f"unknown field; expected one of {', '.join(FIELDS)}"
                )
            )
    stored = stored or {}
    stored_url = _stored_url(stored)
    url = _url(raw.get("url"), stored_url, problems)
    secret, generated = _secret(raw.get("secret"), stored, problems)
    fmt = _format(raw.get("format", FORMATS[0]), problems)
    headers, carried = _headers(raw.get("headers", {}), stored, problems)
    addon, addon_carried = _addon_params(raw, stored, problems)
    _refuse_repeated(headers, addon, problems)
    if url and stored_url:
        carried = [f"config.headers.{name}" for name in carried] + addon_carried
        _refuse_carried(carried, url, stored_url, problems)
    if problems:
        summary = "; ".join(f"{p.attribute}: {p.reason}" for p in problems[:5])
        raise InvalidRequestError(f"invalid config: {summary}", problems)
    config = {"url": url, "secret": secret, "format": fmt, "headers": headers, **addon}
    return WebhookConfig(config=config, secret_generated=generated)


def origin(url: str) -> Origin:
    """(scheme, host, port) of a valid URL, default ports made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _stored_url(stored: Mapping[str, Any]) -> str | None:
    url = stored.get("url")
    return url if isinstance(url, str) and url else None


def _url(value: Any, stored_url: str | None, problems: list[FieldProblem]) -> str:
    reason = _url_problem(value)
    if reason is None:
        unmasked = _unmasked_url(str(value), stored_url)
        if unmasked is not None:
            return unmasked
        reason = (
            f"a query value is {MASK}: a stored query value is kept only at the same origin "
            "(scheme, host, port) and under the same name at the same position; give it in full"
        )
    problems.append(FieldProblem("config.url", reason))
    return ""


def _url_problem(value: Any) -> str | None:
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


def _ascii_host_problem(parts: SplitResult) -> str:
    """A host outside ASCII cannot be sent in a Host header: name its IDNA (punycode) form."""
    host = parts.netloc.rsplit(":", 1)[0] if parts.port is not None else parts.netloc
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        return f"its host must be ASCII, and {host!r} has no IDNA form: {exc}"
    # the host alone: the rest of the URL may hold credentials (query values)
    return f"its host must be ASCII: write it in its IDNA (punycode) form, {ascii_host}"


def _unmasked_url(url: str, stored_url: str | None) -> str | None:
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


def _secret(
    value: Any, stored: Mapping[str, Any], problems: list[FieldProblem]
) -> tuple[str, bool]:
    if value is None:
        return generate_secret(), True
    value, _ = _kept("secret", value, stored, problems)
    if value is None:
        return "", False
    reason = _secret_problem(value)
    if reason is not None:
        problems.append(FieldProblem("config.secret", reason))
        return "", False
    return str(value), False


def _secret_problem(value: Any) -> str | None:
    """Why `value` cannot sign: `whsec_` keys must decode, LaunchDarkly's plain ones print."""
    low, high = _SECRET_BYTES
    if isinstance(value, str) and value.startswith(SECRET_PREFIX):
        if _is_whsec(value):
            return None
        return f"a {SECRET_PREFIX} secret must go on with base64 of {low} to {high} bytes"
    if isinstance(value, str) and 0 < len(value) <= MAX_SECRET and value.isprintable():
        return None
    return (
        f"must be 1 to {MAX_SECRET} printable characters (no control characters), or "
        f"{SECRET_PREFIX} followed by base64 of {low} to {high} bytes "
        "(leave it out to have one generated)"
    )


def _is_whsec(value: str) -> bool:
    try:
        key = base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return False
    return _SECRET_BYTES[0] <= len(key) <= _SECRET_BYTES[1]


def _kept(
    name: str, value: Any, stored: Mapping[str, Any], problems: list[FieldProblem]
) -> tuple[Any, bool]:
    """`value`, or what `config.<name>` holds when `value` is the mask; and whether it was kept.

    A mask with nothing stored is a problem, and gives None.
    """
    if value != MASK:
        return value, False
    previous = stored.get(name)
    if isinstance(previous, str) and previous:
        return previous, True
    problems.append(
        FieldProblem(f"config.{name}", f"is {MASK}, but nothing is stored here; give the value")
    )
    return None, False


def _format(value: Any, problems: list[FieldProblem]) -> str:
    if value not in FORMATS:
        problems.append(FieldProblem("config.format", f"must be one of {', '.join(FORMATS)}"))
        return FORMATS[0]
    return str(value)


def _headers(
    value: Any, stored: Mapping[str, Any], problems: list[FieldProblem]
) -> tuple[dict[str, str], list[str]]:
    """The headers with masks resolved, and the names whose stored value was carried over."""
    if not isinstance(value, Mapping):
        problems.append(FieldProblem("config.headers", "must be an object of strings"))
        return {}, []
    if len(value) > MAX_HEADERS:
        problems.append(
            FieldProblem("config.headers", f"{len(value)} headers; at most {MAX_HEADERS}")
        )
        return {}, []
    stored_headers = stored.get("headers") or {}
    by_name = {str(name).lower(): v for name, v in stored_headers.items()}
    headers: dict[str, str] = {}
    carried: list[str] = []
    seen: set[str] = set()
    for name, header_value in value.items():
        reason = _header_problem(name, header_value, seen)
        if reason is None and header_value == MASK:
            previous = by_name.get(name.lower())
            if isinstance(previous, str):
                # a value stored before values were checked as the sender checks them
                reason = _value_problem(previous)
                header_value = previous
                carried.append(name)
            else:
                reason = f"is {MASK}, but no value is stored under this name; give the value"
        if reason is not None:
            problems.append(FieldProblem(f"config.headers.{name}", reason))
            continue
        headers[name] = header_value
    return headers, carried


def _header_problem(name: str, value: Any, seen: set[str]) -> str | None:
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
    return _value_problem(value)


def _value_problem(value: str) -> str | None:
    if len(value) > MAX_HEADER_VALUE or not _VALUE.fullmatch(value):
        return (
            f"must be at most {MAX_HEADER_VALUE} visible ASCII characters, with spaces and "
            "tabs only between them (no line breaks, control characters or non-ASCII)"
        )
    return None


def _addon_params(
    raw: Mapping[str, Any], stored: Mapping[str, Any], problems: list[FieldProblem]
) -> tuple[dict[str, str], list[str]]:
    """Unleash's addon parameters that are set, and the attributes that kept a stored value."""
    authorization, authorization_kept = _authorization(raw.get("authorization"), stored, problems)
    custom, custom_kept = _custom_headers(raw.get("customHeaders"), stored, problems)
    params = {
        "contentType": _content_type(raw.get("contentType"), problems),
        "authorization": authorization,
        "customHeaders": custom,
        "bodyTemplate": _body_template(raw.get("bodyTemplate"), problems),
    }
    kept = {"config.authorization": authorization_kept, "config.customHeaders": custom_kept}
    set_params = {name: value for name, value in params.items() if value is not None}
    return set_params, [attribute for attribute, was_kept in kept.items() if was_kept]


def _content_type(value: Any, problems: list[FieldProblem]) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) <= MAX_CONTENT_TYPE and _MEDIA_TYPE.fullmatch(value):
        return value
    problems.append(
        FieldProblem(
            "config.contentType",
            "must be a media type, type/subtype with optional parameters "
            f"(text/plain; charset=utf-8), at most {MAX_CONTENT_TYPE} characters",
        )
    )
    return None


def _authorization(
    value: Any, stored: Mapping[str, Any], problems: list[FieldProblem]
) -> tuple[str | None, bool]:
    value, kept = _kept("authorization", value, stored, problems)
    if value is None or value == "":
        return None, False
    reason = _value_problem(value) if isinstance(value, str) else "must be a string"
    if reason is not None:
        problems.append(FieldProblem("config.authorization", reason))
        return None, False
    return str(value), kept


def _custom_headers(
    value: Any, stored: Mapping[str, Any], problems: list[FieldProblem]
) -> tuple[str | None, bool]:
    value, kept = _kept("customHeaders", value, stored, problems)
    if value is None or value == "":
        return None, False
    try:
        parse_custom_headers(value)
    except ValueError as exc:
        problems.append(FieldProblem("config.customHeaders", str(exc)))
        return None, False
    return str(value), kept


def _body_template(value: Any, problems: list[FieldProblem]) -> str | None:
    if value is None or value == "":
        return None
    reason = _template_problem(value)
    if reason is not None:
        problems.append(FieldProblem("config.bodyTemplate", reason))
        return None
    return str(value)


def _template_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string (a Mustache template)"
    try:
        # checked in characters first: a huge string is refused before it is encoded
        too_large = len(value) > MAX_BODY_TEMPLATE or len(value.encode()) > MAX_BODY_TEMPLATE
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate)"
    if too_large:
        return f"must be at most {MAX_BODY_TEMPLATE} bytes of UTF-8"
    try:
        compile_template(value, name="bodyTemplate", mustache=True)
    except TemplateError as exc:
        return f"is not a valid Mustache template: {exc}"
    return None


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members; a name given twice is an error (json keeps the last)."""
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise ValueError(f"header {name!r} is given twice")
        found[name] = value
    return found


def _refuse_repeated(
    headers: Mapping[str, str], addon: Mapping[str, str], problems: list[FieldProblem]
) -> None:
    """A header name set in two places (headers, authorization, customHeaders) is a 400."""
    given = {name.lower() for name in headers}
    if "authorization" in addon:
        if "authorization" in given:
            problems.append(
                FieldProblem("config.authorization", "Authorization is also in config.headers")
            )
        given.add("authorization")
    custom = parse_custom_headers(addon["customHeaders"]) if "customHeaders" in addon else {}
    for name in custom:
        if name.lower() in given:
            problems.append(
                FieldProblem(
                    "config.customHeaders",
                    f"header {name!r} is also set by config.headers or config.authorization",
                )
            )


def _refuse_carried(
    carried: list[str], url: str, stored_url: str, problems: list[FieldProblem]
) -> None:
    """Stored credentials kept (`carried` attributes) while the URL moves origin: 400 each."""
    if not carried or origin(url) == origin(stored_url):
        return
    scheme, host, port = origin(url)
    for attribute in carried:
        problems.append(
            FieldProblem(
                attribute,
                f"holds a stored credential, and the destination moves to "
                f"{scheme}://{host}:{port}: give its value again in this request, or remove it",
            )
        )
