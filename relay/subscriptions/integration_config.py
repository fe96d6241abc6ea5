"""The `config` of a subscription to a manifest's integration: its form variables.

Each form variable is checked by its type (`string`, `dynamicEnum`, `boolean`, `uri`,
`enum` within `allowedValues`); a required one missing, a wrong type or an unknown field
is a 400 naming `config.<key>`, and defaults are applied. `isSecret` values are shown as
`MASK` in every answer; writing `MASK` back keeps the stored value, but only while the
endpoint stays at the same origin (a stored credential never follows a request to
another host). The whole request is then rendered against a sample event, so a template
or URL that cannot render is refused here rather than at delivery.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from relay.errors import FieldProblem, InvalidRequestError
from relay.integrations.manifest import FormVariable, Manifest
from relay.integrations.render import EventContext, RenderedRequest, RenderFailure, render_request
from relay.subscriptions.urls import MASK, origin

MAX_VALUE = 4096
SAMPLE_EVENT: dict[str, Any] = {
    "id": 0,
    "type": "feature-environment-enabled",
    "createdBy": "relay",
    "createdAt": "2026-01-01T00:00:00.000Z",
    "createdByUserId": None,
    "data": {"name": "relay-check", "enabled": True},
    "preData": {"name": "relay-check", "enabled": False},
    "tags": [],
    "featureName": "relay-check",
    "project": "default",
    "environment": "production",
}


def validate_form(
    manifest: Manifest, raw: Any, *, stored: Mapping[str, Any] | None
) -> tuple[dict[str, Any], RenderedRequest]:
    """The config to store and the request it renders for a sample event; 400 if either fails."""
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(
            "config must be an object", [FieldProblem("config", "must be an object")]
        )
    known = {v.key for v in manifest.form_variables}
    problems = [
        FieldProblem(f"config.{name}", f"unknown field; expected one of {', '.join(sorted(known))}")
        for name in raw
        if name not in known
    ]
    config: dict[str, Any] = {}
    carried: list[str] = []
    for variable in manifest.form_variables:
        value = _value(variable, raw, stored, carried, problems)
        if value is not None:
            config[variable.key] = value
    _raise_if(problems)
    rendered = _rendered(manifest, config)
    if carried and stored is not None:
        _refuse_moved(manifest, stored, rendered, carried)
    return config, rendered


def masked_form(secret_fields: Collection[str], config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as shown: the values of the manifest's `isSecret` fields masked (a URL
    that is a credential, as Slack's, is marked so in its manifest)."""
    return {k: MASK if k in secret_fields and v not in (None, "") else v for k, v in config.items()}


def form_credentials(secret_fields: Collection[str], config: Mapping[str, Any]) -> list[str]:
    """The stored values no answer may show (the secrets), for redacting receiver text."""
    return [str(config[k]) for k in secret_fields if isinstance(config.get(k), str) and config[k]]


def _value(
    variable: FormVariable,
    raw: Mapping[str, Any],
    stored: Mapping[str, Any] | None,
    carried: list[str],
    problems: list[FieldProblem],
) -> Any:
    value = raw.get(variable.key)
    if value == MASK and variable.isSecret:
        previous = stored.get(variable.key) if stored else None
        if previous is None:
            problems.append(
                FieldProblem(
                    f"config.{variable.key}", f"is {MASK}, but no value is stored; give it"
                )
            )
            return None
        carried.append(variable.key)
        return previous
    if value is None or value == "":
        if variable.defaultValue is not None:
            return variable.defaultValue
        if not variable.isOptional:
            problems.append(FieldProblem(f"config.{variable.key}", "is required"))
        return None
    reason = _type_problem(variable, value)
    if reason is not None:
        problems.append(FieldProblem(f"config.{variable.key}", reason))
        return None
    return value


def _type_problem(variable: FormVariable, value: Any) -> str | None:
    if variable.type == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > MAX_VALUE or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return f"must be at most {MAX_VALUE} characters, without control characters"
    if variable.type == "enum" and value not in (variable.allowedValues or []):
        return f"must be one of {', '.join(variable.allowedValues or [])}"
    if variable.type == "uri":
        return _uri_problem(value)
    return None


def _uri_problem(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        return f"is not a valid URL: {exc}"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an http or https URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials"
    return None


def _rendered(manifest: Manifest, config: Mapping[str, Any]) -> RenderedRequest:
    try:
        return render_request(manifest, config, EventContext.of(SAMPLE_EVENT), validation=True)
    except RenderFailure as exc:
        reason = f"does not render for a sample event: {exc}"
        raise InvalidRequestError(f"config: {reason}", [FieldProblem("config", reason)]) from exc


def _refuse_moved(
    manifest: Manifest, stored: Mapping[str, Any], rendered: RenderedRequest, carried: list[str]
) -> None:
    try:
        before = render_request(manifest, stored, EventContext.of(SAMPLE_EVENT), validation=True)
    except RenderFailure:
        before = None
    if before is not None and origin(before.url) == origin(rendered.url):
        return
    scheme, host, port = origin(rendered.url)
    _raise_if(
        [
            FieldProblem(
                f"config.{key}",
                f"holds a stored secret, and the destination moves to {scheme}://{host}:{port}: "
                "give its value again in this request",
            )
            for key in carried
        ]
    )


def _raise_if(problems: list[FieldProblem]) -> None:
    if problems:
        summary = "; ".join(f"{p.attribute}: {p.reason}" for p in problems[:5])
        raise InvalidRequestError(f"invalid config: {summary}", problems)
