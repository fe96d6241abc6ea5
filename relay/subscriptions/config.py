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
a client can GET, edit and PUT back a whole config. Stored header, authorization and
customHeaders values never follow the URL to another origin (scheme, host, port): moving
it means giving them again in the same request. The signing secret does follow a new URL
(it is never sent, only the signatures it makes). The URL's own rules, query masking
included, are in `urls.py`; the rules of a header name and value in `headers.py`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.errors import FieldProblem, InvalidRequestError
from relay.integrations.handlebars import TemplateError, compile_template
from relay.subscriptions.headers import (
    MAX_CONTENT_TYPE,
    MAX_HEADERS,
    header_problem,
    header_value_problem,
    is_media_type,
    parse_custom_headers,
)
from relay.subscriptions.urls import (
    MASK,
    masked_url,
    origin,
    query_values,
    unmasked_url,
    url_problem,
)

INTEGRATION_KEY = "webhook"
FORMATS = ("unleash", "launchdarkly")
SECRET_PREFIX = "whsec_"
# Unleash's webhook addon parameters, spelled as Unleash spells them
ADDON_FIELDS = ("contentType", "authorization", "customHeaders", "bodyTemplate")
FIELDS = ("url", "secret", "format", "headers", *ADDON_FIELDS)
DEFAULT_CONTENT_TYPE = "application/json"
MAX_SECRET = 512
MAX_BODY_TEMPLATE = 64 * 1024  # bytes of UTF-8

_CREDENTIAL_FIELDS = ("secret", "authorization", "customHeaders")

_SECRET_BYTES = (24, 64)


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
        found += query_values(url)
    return [value for value in found if value]


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


def _stored_url(stored: Mapping[str, Any]) -> str | None:
    url = stored.get("url")
    return url if isinstance(url, str) and url else None


def _url(value: Any, stored_url: str | None, problems: list[FieldProblem]) -> str:
    reason = url_problem(value)
    if reason is None:
        unmasked = unmasked_url(str(value), stored_url)
        if unmasked is not None:
            return unmasked
        reason = (
            f"a query value is {MASK}: a stored query value is kept only at the same origin "
            "(scheme, host, port) and under the same name at the same position; give it in full"
        )
    problems.append(FieldProblem("config.url", reason))
    return ""


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
        reason = header_problem(name, header_value, seen)
        if reason is None and header_value == MASK:
            previous = by_name.get(name.lower())
            if isinstance(previous, str):
                # a value stored before values were checked as the sender checks them
                reason = header_value_problem(previous)
                header_value = previous
                carried.append(name)
            else:
                reason = f"is {MASK}, but no value is stored under this name; give the value"
        if reason is not None:
            problems.append(FieldProblem(f"config.headers.{name}", reason))
            continue
        headers[name] = header_value
    return headers, carried


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
    if isinstance(value, str) and is_media_type(value):
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
    reason = header_value_problem(value) if isinstance(value, str) else "must be a string"
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
