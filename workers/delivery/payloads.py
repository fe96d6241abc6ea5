"""Webhook bodies: the recorded Unleash event as is, or a LaunchDarkly audit-log entry.

The `launchdarkly` format mirrors LaunchDarkly's `AuditLogEntryRep` (field names from
the `launchdarkly-api` client models), so receivers written for LaunchDarkly's audit-log
webhooks read relay deliveries unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from policies import EventTarget
from relay.clock import rfc3339_ms
from workers.errors import UnknownFormatError

__all__ = ["FORMATS", "TEST_EVENT_TYPE", "launchdarkly_entry", "render", "test_event"]

FORMATS = ("unleash", "launchdarkly")
TEST_EVENT_TYPE = "relay-test"
_JSON = "application/json"


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
    actor = _text(event.get("createdBy")) or "unknown"
    name = _subject_name(event, target)
    where = f" in {target.environment}" if target.environment else ""
    entry: dict[str, Any] = {
        "_links": {"self": {"href": f"{base_url}/api/v2/auditlog/{event_id}", "type": _JSON}},
        "_id": event_id,
        "_accountId": _text(event.get("source")) or "relay",
        "date": _epoch_ms(event.get("createdAt")),
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
        "createdAt": _rfc3339(now_ms),
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


def _dump(document: Mapping[str, Any]) -> bytes:
    # compact, keys in recorded order: the bytes that are signed are the bytes sent
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _subject_name(event: Mapping[str, Any], target: EventTarget) -> str:
    feature = _text(event.get("featureName"))
    if feature:
        return feature
    keys = [segment.key for segment in target.segments if segment.key]
    return keys[-1] if keys else target.event_type or "unknown"


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


def _epoch_ms(created_at: object) -> int:
    if isinstance(created_at, int | float) and not isinstance(created_at, bool):
        return int(created_at)
    if isinstance(created_at, str):
        try:
            # the parser ingest validated this createdAt with
            return rfc3339_ms(created_at)
        except ValueError:
            return 0
    return 0


def _rfc3339(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
