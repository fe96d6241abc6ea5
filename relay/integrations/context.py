"""What an integration's templates see: the event as a LaunchDarkly audit-log entry.

The names are the ones LaunchDarkly's integration framework gives its templates (`title`,
`details`, `member`, `project.environment`, `timestamp`, ...), filled from the recorded
Unleash event and its policy target, plus `event` (the Unleash event itself). docs/
integrations.md lists every field with a rendered example.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from json.encoder import encode_basestring as _encode_string  # the C encoder, unquoted below
from typing import Any

from policies import EventTarget
from relay.clock import rfc3339_ms

JSON_MEDIA = "application/json"
# LaunchDarkly's kind names where the policy resource types are abbreviated
_KINDS = {"proj": "project", "env": "environment"}
_MAX_DETAIL_KEYS = 8


def audit_entry(
    event: Mapping[str, Any], *, target: EventTarget, base_url: str = ""
) -> dict[str, Any]:
    """The template context of `event` (without `formVariables`, which are per subscription);
    `base_url` is relay's public URL (RELAY_PUBLIC_URL), for the entry's own link."""
    actor = text_of(event.get("createdBy")) or "unknown"
    name = subject_name(event, target)
    environment = target.environment or ""
    project = target.project or ""
    milliseconds = epoch_ms(event.get("createdAt"))
    event_id = str(event.get("id", ""))
    # absolute or nothing: templates put it where services expect a full URL
    href = f"{base_url.rstrip('/')}/api/v2/auditlog/{event_id}" if base_url else ""
    return {
        "_id": event_id,
        "_links": {"self": {"href": href, "type": JSON_MEDIA}},
        "kind": _KINDS.get(target.kind, target.kind),
        "key": name,
        "name": name,
        # "in <environment>" says where, except of the environment itself
        "title": _title(
            actor, target.title_verb, name, "" if target.kind == "env" else environment
        ),
        "details": _details(event, target),
        "titleVerb": target.title_verb,
        "verbKind": target.ld_actions[0] if target.ld_actions else target.event_type,
        "comment": text_of(event.get("comment")) or "",
        "member": member_of(event, actor),
        "project": {
            "key": project,
            "name": project,
            "tags": [],
            "environment": {"key": environment, "name": environment, "tags": []},
        },
        "target": {"name": name, "resources": [target.resource]},
        "timestamp": _timestamp(milliseconds),
        "tags": [f"{tag.type}:{tag.value}" for tag in target.tags],
        "customProperties": {},
        "event": dict(event),
    }


def json_escaped(value: Any) -> Any:
    """Every string inside `value` JSON-escaped (JSON.stringify without its quotes), as the
    framework does before rendering a JSON body, so `"{{{title.plainText}}}"` stays JSON."""
    if isinstance(value, str):
        return _encode_string(value)[1:-1]
    if isinstance(value, dict):  # plain types first: the abc checks cost more than the work
        return {key: json_escaped(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_escaped(item) for item in value]
    if isinstance(value, Mapping):
        return {key: json_escaped(item) for key, item in value.items()}
    return value


def subject_name(event: Mapping[str, Any], target: EventTarget) -> str:
    """The flag's name, else the last keyed segment of the resource, else the event type."""
    feature = text_of(event.get("featureName"))
    if feature:
        return feature
    keys = [segment.key for segment in target.segments if segment.key]
    return keys[-1] if keys else target.event_type or "unknown"


def member_of(event: Mapping[str, Any], actor: str) -> dict[str, str]:
    """LaunchDarkly's member fields from Unleash's `createdBy` (a name or an email)."""
    is_email = "@" in actor
    user_id = event.get("createdByUserId")
    return {
        "_id": str(user_id) if isinstance(user_id, int) and not isinstance(user_id, bool) else "",
        "email": actor if is_email else "",
        "firstName": "" if is_email else actor,
        "lastName": "",
        "displayName": actor,
    }


def epoch_ms(created_at: object) -> int:
    """`createdAt` (RFC 3339 text or epoch milliseconds) in epoch milliseconds; 0 if neither."""
    if isinstance(created_at, int | float) and not isinstance(created_at, bool):
        return int(created_at)
    if isinstance(created_at, str):
        try:
            return rfc3339_ms(created_at)  # the parser ingest validated createdAt with
        except ValueError:
            return 0
    return 0


def text_of(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _title(actor: str, verb: str, name: str, environment: str) -> dict[str, str]:
    where = f" in {environment}" if environment else ""
    md_where = f" in `{environment}`" if environment else ""
    html_where = f" in <code>{html.escape(environment)}</code>" if environment else ""
    return {
        "plainText": f"{actor} {verb} {name}{where}",
        "markdown": f"**{actor}** {verb} `{name}`{md_where}",
        "html": f"<b>{html.escape(actor)}</b> {html.escape(verb)} "
        f"<code>{html.escape(name)}</code>{html_where}",
    }


def _details(event: Mapping[str, Any], target: EventTarget) -> dict[str, str]:
    """What changed, when the event carries both sides: the top-level keys that differ."""
    data, before = event.get("data"), event.get("preData")
    if not isinstance(data, Mapping) or not isinstance(before, Mapping):
        return {"plainText": "", "markdown": ""}
    changed = [k for k in data if str(k) and data.get(k) != before.get(k)]
    changed += [k for k in before if k not in data]
    if not changed:
        return {"plainText": "", "markdown": ""}
    shown = [str(k) for k in changed[:_MAX_DETAIL_KEYS]]
    more = f" and {len(changed) - len(shown)} more" if len(changed) > len(shown) else ""
    kind = target.event_type or target.kind
    return {
        "plainText": f"{kind}: changed {', '.join(shown)}{more}",
        "markdown": f"`{kind}`: changed {', '.join(f'`{k}`' for k in shown)}{more}",
    }


def _timestamp(milliseconds: int) -> dict[str, Any]:
    moment = datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    return {
        "milliseconds": milliseconds,
        "seconds": milliseconds // 1000,
        "rfc3339": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "simple": moment.strftime("%Y-%m-%d %H:%M:%S"),
    }
