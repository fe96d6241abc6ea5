"""The `config` of a `webhook` subscription: validation, secret generation and masking.

A config has four fields: `url` (http or https), `secret` (Standard Webhooks form:
`whsec_` + base64 of 24 to 64 bytes; generated when absent), `format` (`unleash` or
`launchdarkly`) and `headers` (static headers added to every delivery). Secrets and
credential-like header values are masked in every answer; writing a masked value back
unchanged keeps the stored one, so a client can GET, edit and PUT back a whole config.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from relay.errors import FieldProblem, InvalidRequestError

INTEGRATION_KEY = "webhook"
FORMATS = ("unleash", "launchdarkly")
SECRET_PREFIX = "whsec_"
FIELDS = ("url", "secret", "format", "headers")

_SECRET_BYTES = (24, 64)
_MAX_URL = 2048
_MAX_HEADERS = 20
_MAX_HEADER_VALUE = 1024
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
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
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "accept-encoding",
        "x-ld-signature",
    }
)
_REFUSED_PREFIXES = ("webhook-", "x-relay-")
_SENSITIVE = re.compile(r"auth|token|secret|key|password|cookie|signature", re.IGNORECASE)


@dataclass(frozen=True)
class WebhookConfig:
    """A validated config, and whether this request had the relay generate its secret."""

    config: dict[str, Any]
    secret_generated: bool


def generate_secret() -> str:
    """A new signing secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def mask(value: str) -> str:
    """`whsec_abcd...wxyz` -> `whse****...wxyz`: first and last 4 characters kept."""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def masked_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as shown to clients: secret and credential-like header values masked."""
    shown = dict(config)
    if isinstance(shown.get("secret"), str):
        shown["secret"] = mask(shown["secret"])
    headers = shown.get("headers")
    if isinstance(headers, dict):
        shown["headers"] = {
            name: mask(value) if _is_sensitive(name) else value for name, value in headers.items()
        }
    return shown


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
    url = _url(raw.get("url"), problems)
    secret, generated = _secret(raw.get("secret"), stored, problems)
    fmt = _format(raw.get("format", FORMATS[0]), problems)
    headers = _headers(raw.get("headers", {}), stored, problems)
    if problems:
        summary = "; ".join(f"{p.attribute}: {p.reason}" for p in problems[:5])
        raise InvalidRequestError(f"invalid config: {summary}", problems)
    config = {"url": url, "secret": secret, "format": fmt, "headers": headers}
    return WebhookConfig(config=config, secret_generated=generated)


def _url(value: Any, problems: list[FieldProblem]) -> str:
    reason = _url_problem(value)
    if reason is not None:
        problems.append(FieldProblem("config.url", reason))
        return ""
    return str(value)


def _url_problem(value: Any) -> str | None:
    if value is None:
        return "is required"
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > _MAX_URL or value != value.strip() or any(c.isspace() for c in value):
        return f"must be a URL without spaces, at most {_MAX_URL} characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        return f"is not a valid URL: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "must have a host"
    if parts.username is not None or parts.password is not None:
        # answers show the URL in clear; credentials belong in masked headers
        return "must not contain credentials; send them in config.headers"
    return None


def _secret(
    value: Any, stored: Mapping[str, Any] | None, problems: list[FieldProblem]
) -> tuple[str, bool]:
    if value is None:
        return generate_secret(), True
    stored_secret = stored.get("secret") if stored else None
    if isinstance(stored_secret, str) and value == mask(stored_secret):
        return stored_secret, False
    if not isinstance(value, str) or not _is_secret(value):
        low, high = _SECRET_BYTES
        problems.append(
            FieldProblem(
                "config.secret",
                f"must be {SECRET_PREFIX} followed by base64 of {low} to {high} bytes "
                "(leave it out to have one generated)",
            )
        )
        return "", False
    return value, False


def _is_secret(value: str) -> bool:
    if not value.startswith(SECRET_PREFIX):
        return False
    try:
        key = base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return False
    return _SECRET_BYTES[0] <= len(key) <= _SECRET_BYTES[1]


def _format(value: Any, problems: list[FieldProblem]) -> str:
    if value not in FORMATS:
        problems.append(FieldProblem("config.format", f"must be one of {', '.join(FORMATS)}"))
        return FORMATS[0]
    return str(value)


def _headers(
    value: Any, stored: Mapping[str, Any] | None, problems: list[FieldProblem]
) -> dict[str, str]:
    if not isinstance(value, Mapping):
        problems.append(FieldProblem("config.headers", "must be an object of strings"))
        return {}
    if len(value) > _MAX_HEADERS:
        problems.append(FieldProblem("config.headers", f"at most {_MAX_HEADERS} headers"))
    stored_headers = stored.get("headers", {}) if stored else {}
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for name, header_value in value.items():
        reason = _header_problem(name, header_value, seen)
        if reason is not None:
            problems.append(FieldProblem(f"config.headers.{name}", reason))
            continue
        previous = stored_headers.get(name)
        if isinstance(previous, str) and _is_sensitive(name) and header_value == mask(previous):
            header_value = previous
        headers[name] = header_value
    return headers


def _header_problem(name: str, value: Any, seen: set[str]) -> str | None:
    lowered = name.lower()
    if not _TOKEN.match(name):
        return "is not a valid header name"
    if lowered in _REFUSED_HEADERS or lowered.startswith(_REFUSED_PREFIXES):
        return "is set by the relay and cannot be configured"
    if lowered in seen:
        return "is given twice (header names are case-insensitive)"
    seen.add(lowered)
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > _MAX_HEADER_VALUE or any(c in value for c in "\r\n\0"):
        return f"must be one line of at most {_MAX_HEADER_VALUE} characters"
    return None


def _is_sensitive(header_name: str) -> bool:
    return bool(_SENSITIVE.search(header_name))
