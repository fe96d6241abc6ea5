"""Webhook bodies: the recorded Unleash event as is, a LaunchDarkly audit-log entry, or
the subscription's `bodyTemplate` rendered as Unleash's webhook addon renders it.

The `launchdarkly` format mirrors LaunchDarkly's `AuditLogEntryRep` (field names from
the `launchdarkly-api` client models), so receivers written for LaunchDarkly's audit-log
webhooks read relay deliveries unchanged. `webhook_parts` gives everything a `webhook`
delivery sends but its signatures: body, Content-Type and the configured headers.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from policies import EventTarget
from relay.clock import rfc3339_of
from relay.integrations.context import epoch_ms, subject_name, text_of
from relay.integrations.handlebars import RenderError, Template, TemplateError, compile_template
from relay.subscriptions.config import DEFAULT_CONTENT_TYPE
from relay.subscriptions.headers import parse_custom_headers
from workers.errors import PermanentDeliveryError, UnknownFormatError

__all__ = [
    "ATTEMPT_HEADER",
    "FORMATS",
    "TEST_EVENT_TYPE",
    "BodyTemplateError",
    "WebhookParts",
    "WebhookPartsError",
    "launchdarkly_entry",
    "render",
    "test_event",
    "webhook_parts",
]

FORMATS = ("unleash", "launchdarkly")
TEST_EVENT_TYPE = "relay-test"
# a rendered body's bounds, as relay.integrations.render bounds an integration's
MAX_BODY_BYTES = 1_000_000
MAX_RENDER_STEPS = 200_000
_JSON = "application/json"
# a quote, or a backslash and the character it escapes: what Unleash's scan for "inside a
# JSON string" looks at
_QUOTE_OR_ESCAPE = re.compile(r'\\.|"', re.DOTALL)


class WebhookPartsError(PermanentDeliveryError, ValueError):
    """The subscription's config cannot make this delivery's request; it is dead."""


class BodyTemplateError(WebhookPartsError):
    """`config.bodyTemplate` does not render for this event; the message says why."""


# sent with every webhook: the attempt's number, 1 for the first (outside the signature,
# like webhook-id's retries: a receiver reads it, never trusts its own state to it)
ATTEMPT_HEADER = "X-Relay-Attempt"


@dataclass(frozen=True)
class WebhookParts:
    """What a `webhook` delivery sends, its signature headers aside."""

    body: bytes
    content_type: str
    # authorization, customHeaders, then config.headers, as sent
    headers: dict[str, str]


def webhook_parts(
    event: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    target: EventTarget,
    unleash_url: str = "",
    body: bytes | None = None,
) -> WebhookParts:
    """Body, Content-Type and configured headers of the delivery of `event` under `config`.

    With a `bodyTemplate` the body is that Mustache template rendered as Unleash's webhook
    addon renders it (`_templated_body`); without one, `render` in `config.format`.
    `unleash_url` makes the links of `eventMarkdown`. Raises `WebhookPartsError`
    (`BodyTemplateError` for the template), and `UnknownFormatError` for a bad format.
    `body`: the body made already for the same event, format and template (a batch makes
    each once).
    """
    template = config.get("bodyTemplate")
    if body is not None:
        pass
    elif isinstance(template, str) and template:
        body = _templated_body(template, event, unleash_url=unleash_url)
    else:
        body = render(event, fmt=str(config.get("format") or FORMATS[0]), target=target)
    content_type = config.get("contentType")
    if not isinstance(content_type, str) or not content_type:
        content_type = DEFAULT_CONTENT_TYPE
    return WebhookParts(body=body, content_type=content_type, headers=_configured_headers(config))


def render(event: Mapping[str, Any], *, fmt: str, target: EventTarget, base_url: str = "") -> bytes:
    """The body of a delivery of `event` in format `fmt` (`unleash` or `launchdarkly`)."""
    if fmt == "unleash":
        return _dump(event)
    if fmt == "launchdarkly":
        return _dump(launchdarkly_entry(event, target=target, base_url=base_url))
    raise UnknownFormatError(f"unknown payload format {fmt!r} (use one of {', '.join(FORMATS)})")


def launchdarkly_entry(
    event: Mapping[str, Any], *, target: EventTarget, base_url: str = ""
) -> dict[str, Any]:
    """The event as a LaunchDarkly audit-log entry (`AuditLogEntryRep` field names)."""
    event_id = str(event.get("id", ""))
    actor = text_of(event.get("createdBy")) or "unknown"
    name = subject_name(event, target)
    where = f" in {target.environment}" if target.environment else ""
    entry: dict[str, Any] = {
        "_links": {"self": {"href": f"{base_url}/api/v2/auditlog/{event_id}", "type": _JSON}},
        "_id": event_id,
        "_accountId": text_of(event.get("source")) or "relay",
        "date": epoch_ms(event.get("createdAt")),
        "accesses": [
            {"action": action, "resource": target.resource} for action in target.ld_actions
        ],
        "kind": target.kind,
        "name": name,
        "description": _description(actor, target, name),
        "shortDescription": f"{target.title_verb} {name}{where}".capitalize(),
        "member": _member(event, actor),
        "titleVerb": target.title_verb,
        "title": f"{actor} {target.title_verb} {name}{where}",
        "target": {"name": name, "resources": [target.resource]},
    }
    if target.project and target.kind == "flag":
        entry["parent"] = {"name": target.project, "resource": f"proj/{target.project}"}
    return entry


def test_event(*, now_ms: int) -> dict[str, Any]:
    """A synthetic Unleash event for "send a test event": type `relay-test`, id 0."""
    return {
        "id": 0,
        "type": TEST_EVENT_TYPE,
        "createdBy": "relay",
        "createdAt": rfc3339_of(now_ms),
        "createdByUserId": None,
        "data": {
            "test": True,
            "message": "A test event sent by the relay to check this subscription's endpoint.",
        },
        "preData": None,
        "tags": [],
        "featureName": None,
        "project": None,
        "environment": None,
        "source": "relay",
    }


def _configured_headers(config: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    authorization = config.get("authorization")
    if isinstance(authorization, str) and authorization:
        headers["Authorization"] = authorization
    custom = config.get("customHeaders")
    if custom:
        try:
            headers.update(parse_custom_headers(custom))
        except ValueError as exc:  # stored unchecked, by a relay before these checks
            raise WebhookPartsError(f"config.customHeaders {exc}") from exc
    headers.update({str(name): str(value) for name, value in (config.get("headers") or {}).items()})
    return headers


def _templated_body(source: str, event: Mapping[str, Any], *, unleash_url: str) -> bytes:
    """`source` rendered over `{event, eventJson, eventMarkdown}`, as Unleash's addon does.

    As there, `eventJson` is the event's JSON *as a JSON string* (stringified twice, so
    `{"json": {{{eventJson}}}}` holds a string), and `eventMarkdown` goes in after
    rendering: never HTML-escaped, and JSON-escaped where it lands inside a JSON string.
    One difference in eventJson: a whole float is written as Python writes it (`1.0`, where
    JSON.stringify writes `1`); the recorded event holds such floats only if Unleash sent
    them so.
    """
    # a marker no event can hold: Unleash's fixed one would swap an event's own copy too
    marker = f"\0{secrets.token_hex(8)}\0"
    context = {
        "event": event,
        "eventJson": json.dumps(_json_text(event), ensure_ascii=False),
        "eventMarkdown": marker,
    }
    try:
        rendered = _compiled(source).render(
            context, max_bytes=MAX_BODY_BYTES, max_steps=MAX_RENDER_STEPS
        )
    except (TemplateError, RenderError) as exc:
        raise BodyTemplateError(f"config.bodyTemplate: {exc}") from exc
    if marker in rendered:
        rendered = _with_markdown(rendered, marker, _event_markdown(event, unleash_url=unleash_url))
    try:
        encoded = rendered.encode()
    except UnicodeEncodeError as exc:
        raise BodyTemplateError("config.bodyTemplate: the body holds a lone surrogate") from exc
    if len(encoded) > MAX_BODY_BYTES:
        raise BodyTemplateError(f"config.bodyTemplate: the body is over {MAX_BODY_BYTES} bytes")
    return encoded


@lru_cache(maxsize=64)
def _compiled(source: str) -> Template:
    # a subscription's template renders for every event it gets: compile it once
    return compile_template(source, name="bodyTemplate", mustache=True)


def _with_markdown(rendered: str, marker: str, markdown: str) -> str:
    """Each marker replaced by `markdown`, JSON-escaped where it stands inside a JSON string."""
    pieces = rendered.split(marker)
    escaped = json.dumps(markdown, ensure_ascii=False)[1:-1]
    if len(rendered) + (len(pieces) - 1) * len(escaped) > MAX_BODY_BYTES:
        raise BodyTemplateError(f"config.bodyTemplate: the body is over {MAX_BODY_BYTES} bytes")
    out = [pieces[0]]
    inside = _quotes(pieces[0]) % 2 == 1
    for piece in pieces[1:]:
        out += (escaped if inside else markdown, piece)
        inside ^= _quotes(piece) % 2 == 1
    return "".join(out)


def _quotes(text: str) -> int:
    """Unescaped double quotes in `text` (a backslash escapes the next character anywhere)."""
    return sum(1 for match in _QUOTE_OR_ESCAPE.finditer(text) if match.group() == '"')


def _dump(document: Mapping[str, Any]) -> bytes:
    # compact, keys in recorded order: the bytes that are signed are the bytes sent
    return _json_text(document).encode()


def _json_text(document: Mapping[str, Any]) -> str:
    """Compact JSON as JSON.stringify writes it: no spaces, non-ASCII as is."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _description(actor: str, target: EventTarget, name: str) -> str:
    text = f"**{actor}** {target.title_verb} `{name}`"
    if target.environment:
        text += f" in `{target.environment}`"
    if target.project:
        text += f" (project `{target.project}`)"
    return text


def _member(event: Mapping[str, Any], actor: str) -> dict[str, str]:
    member = {"email": actor} if "@" in actor else {"firstName": actor}
    user_id = event.get("createdByUserId")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        member["_id"] = str(user_id)
    return member


# Unleash's one-line summaries of the common feature and project events, in the form its
# webhook addon sends as `eventMarkdown` (FeatureEventFormatterMd, "simple" style: `*bold*`,
# `[text](url)` links). Fields: user, feature (linked), name (not linked), project (linked),
# project_name (not linked), environment, strategy, tag, old_tag, old_project; all bold.
_MARKDOWN = {
    "feature-created": "{user} created {feature} in project {project}",
    "feature-archived": "{user} archived {name} in project {project}",
    "feature-deleted": "{user} deleted {name} in project {project}",
    "feature-revived": "{user} revived {feature} in project {project}",
    "feature-stale-on": "{user} marked {feature} as stale in project {project}",
    "feature-stale-off": "{user} removed the stale marking on {feature} in project {project}",
    "feature-potentially-stale-on": "{feature} was marked as potentially stale in project "
    "{project}",
    "feature-completed": "{feature} was marked as completed in project {project}",
    "feature-metadata-updated": "{user} updated {feature} metadata in project {project}",
    "feature-project-change": "{user} moved {feature} from {old_project} to {project}",
    "feature-environment-enabled": "{user} enabled {feature} for the {environment} "
    "environment in project {project}",
    "feature-environment-disabled": "{user} disabled {feature} for the {environment} "
    "environment in project {project}",
    "feature-environment-variants-updated": "{user} updated variants for {feature} for the "
    "{environment} environment in project {project}",
    "feature-strategy-add": "{user} added strategy {strategy} to {feature} for the "
    "{environment} environment in project {project}",
    "feature-strategy-remove": "{user} removed strategy {strategy} from {feature} for the "
    "{environment} environment in project {project}",
    "feature-strategy-update": "{user} updated {feature} in project {project} by updating "
    "strategy {strategy} in {environment}",
    "feature-tagged": "{user} tagged {feature} with {tag} in project {project}",
    "feature-untagged": "{user} untagged {feature} with {old_tag} in project {project}",
    "project-created": "{user} created project {project}",
    "project-deleted": "{user} deleted project {project_name}",
}
_FALLBACK_MARKDOWN = "{user} triggered {type}"


def _event_markdown(event: Mapping[str, Any], *, unleash_url: str) -> str:
    """Unleash's `eventMarkdown` line for the common events, "*user* triggered *type*" else.

    Differences from Unleash's formatter: a strategy update names the strategy and the
    environment but not what changed in it (rollout, constraints, segments); change
    requests, users, segments and other non-feature events take the fallback line; without
    `unleash_url` names are shown bold, not linked (Unleash always knows its own URL).
    """
    fields = _markdown_fields(event, unleash_url.rstrip("/"))
    line = _MARKDOWN.get(fields["type"], _FALLBACK_MARKDOWN)
    return line.format_map({name: f"*{value}*" for name, value in fields.items()})


def _markdown_fields(event: Mapping[str, Any], unleash_url: str) -> dict[str, str]:
    data, pre = _mapping(event.get("data")), _mapping(event.get("preData"))
    feature, project = _shown(event.get("featureName")), _shown(event.get("project"))
    project_url = f"{unleash_url}/projects/{project}"
    return {
        "type": _shown(event.get("type")),
        "user": _shown(event.get("createdBy")),
        "name": feature,
        "feature": _link(feature, f"{project_url}/features/{feature}", unleash_url),
        "project": _link(project, project_url, unleash_url),
        "project_name": project,
        "environment": _shown(event.get("environment")),
        "strategy": next(
            (_shown(d.get(k)) for k in ("title", "name") for d in (pre, data) if d.get(k)), ""
        ),
        "tag": f"{_shown(data.get('type'))}:{_shown(data.get('value'))}",
        "old_tag": f"{_shown(pre.get('type'))}:{_shown(pre.get('value'))}",
        "old_project": _shown(data.get("oldProject")),
    }


def _link(text: str, url: str, unleash_url: str) -> str:
    return f"[{text}]({url})" if text and unleash_url else text


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _shown(value: object) -> str:
    """A value as Mustache shows it in Unleash's lines: strings and numbers, else nothing."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, str | int | float) else ""
