"""One delivery of an integration: its URL, headers and body rendered from the manifest.

The endpoint's URL and header values render over the subscription's form variables by
their own names (`{{hostURL}}/api/v1/events`); the body renders the template for the
event's kind over the audit-log entry (relay.integrations.context) plus `formVariables`.
When the body is JSON, the entry's strings are JSON-escaped first (as LaunchDarkly's
framework does) and the rendered body must parse. Anything that fails is a
`RenderFailure`: a 400 at create or PATCH time, a dead delivery at delivery time (the same
template and config would fail again, so it is never retried).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from policies import map_event
from relay.integrations.context import audit_entry, json_escaped
from relay.integrations.handlebars import RenderError, Template
from relay.integrations.manifest import Manifest

MAX_BODY_BYTES = 1_000_000
MAX_URL = 2048
MAX_HEADER_VALUE = 8192
MAX_STEPS = 200_000
# LaunchDarkly's Splunk form variable: a self-signed HEC certificate is accepted when set
SKIP_TLS_VERIFICATION = "skip-ca-verification"
_VISIBLE = re.compile(r"[\x20-\x7e\t]*")
_SPACE = re.compile(r"\s")


class RenderFailure(ValueError):
    """The request cannot be rendered; the message says which part and why (no values)."""


@dataclass(frozen=True)
class RenderedRequest:
    """An integration's request, ready for the sender."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    verify_tls: bool = True


class EventContext:
    """The audit-log entry of one event, and its JSON-escaped form made once if needed."""

    def __init__(self, entry: Mapping[str, Any]) -> None:
        self.entry = entry

    @classmethod
    def of(cls, event: Mapping[str, Any], *, base_url: str = "") -> EventContext:
        return cls(audit_entry(event, target=map_event(event), base_url=base_url))

    @cached_property
    def escaped(self) -> Mapping[str, Any]:
        escaped: Mapping[str, Any] = json_escaped(self.entry)
        return escaped


def render_request(
    manifest: Manifest,
    config: Mapping[str, Any],
    context: EventContext,
    *,
    validation: bool = False,
) -> RenderedRequest:
    """The request for one event (or the test send's, `validation`); `RenderFailure` if not."""
    kind = str(context.entry.get("kind", ""))
    template = manifest.validation_template() if validation else manifest.template_for(kind)
    if template is None:
        raise RenderFailure(f"the integration {manifest.key} has no template for {kind} events")
    variables = {v.key: config.get(v.key) for v in manifest.form_variables}
    body = _body(manifest, template, variables, context)
    headers = {"Content-Type": manifest.endpoint.content_type}
    for name, value_template in manifest.endpoint.headers:
        value = _render(value_template, variables, f"header {name}", MAX_HEADER_VALUE).strip()
        if not _VISIBLE.fullmatch(value):
            raise RenderFailure(f"header {name} renders to characters a header cannot carry")
        if value:
            headers[name] = value
    return RenderedRequest(
        method=manifest.endpoint.method,
        url=_url(manifest, variables),
        headers=headers,
        body=body,
        verify_tls=config.get(SKIP_TLS_VERIFICATION) is not True,
    )


def _body(
    manifest: Manifest,
    template: Template,
    variables: Mapping[str, Any],
    context: EventContext,
) -> bytes:
    sends_json = manifest.endpoint.sends_json
    entry = context.escaped if sends_json else context.entry
    text = _render(template, {**entry, "formVariables": variables}, "body", MAX_BODY_BYTES)
    if sends_json:
        try:
            json.loads(text)
        except ValueError as exc:
            raise RenderFailure(
                f"the body template {template.name} renders invalid JSON: {exc}"
            ) from exc
    return text.encode()


def _url(manifest: Manifest, variables: Mapping[str, Any]) -> str:
    url = _render(manifest.endpoint.url, variables, "the endpoint URL", MAX_URL).strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        raise RenderFailure(f"the endpoint URL renders to an invalid URL: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise RenderFailure("the endpoint URL must render to an http or https URL with a host")
    if _SPACE.search(url) or not url.isascii():
        raise RenderFailure("the endpoint URL renders with spaces or non-ASCII characters")
    return url


def _render(template: Template, context: Mapping[str, Any], what: str, max_bytes: int) -> str:
    try:
        return template.render(context, max_bytes=max_bytes, max_steps=MAX_STEPS)
    except RenderError as exc:
        raise RenderFailure(f"{what} fails to render: {exc}") from exc
