"""Webhook bodies in both formats: the recorded Unleash event and a LaunchDarkly audit entry."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from launchdarkly_api.models.audit_log_entry_rep import AuditLogEntryRep

from policies import map_event
from workers.delivery import payloads
from workers.delivery.payloads import render
from workers.errors import PermanentDeliveryError, UnknownFormatError

SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "data/shared/fixtures/unleash/unleash-8.2.0-events-sample.jsonl"
)
SAMPLE_EVENTS = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]

ENABLED = {
    "id": 11,
    "type": "feature-environment-enabled",
    "createdBy": "alice@example.com",
    "createdAt": "2026-11-22T19:05:22.792Z",
    "createdByUserId": 42,
    "data": None,
    "preData": None,
    "tags": [],
    "featureName": "checkout",
    "project": "default",
    "environment": "production",
    "producerId": 9001,
    "source": "unleash-prod",
}


def as_ld(event: dict[str, Any], base_url: str = "") -> dict[str, Any]:
    body = render(event, fmt="launchdarkly", target=map_event(event), base_url=base_url)
    entry = json.loads(body)
    assert isinstance(entry, dict)
    return entry


def test_unleash_format_is_the_recorded_event_compact_in_recorded_order() -> None:
    """The unleash body is the event JSON itself: same keys in the same order, no spaces."""
    event = {"type": "feature-created", "id": 3, "featureName": "café", "tags": []}
    body = render(event, fmt="unleash", target=map_event(event))
    assert body == '{"type":"feature-created","id":3,"featureName":"café","tags":[]}'.encode()


@pytest.mark.parametrize("event", SAMPLE_EVENTS, ids=lambda e: f"{e['id']}-{e['type']}")
def test_unleash_format_round_trips_real_events(event: dict[str, Any]) -> None:
    """Real Unleash 8.2 events come back unchanged."""
    assert json.loads(render(event, fmt="unleash", target=map_event(event))) == event


@pytest.mark.parametrize("event", SAMPLE_EVENTS, ids=lambda e: f"{e['id']}-{e['type']}")
def test_launchdarkly_format_parses_as_an_audit_log_entry(event: dict[str, Any]) -> None:
    """Every real event renders to an entry LaunchDarkly's own client model accepts."""
    entry = as_ld(event)
    parsed = AuditLogEntryRep.from_dict(entry)
    assert parsed is not None
    target = map_event(event)
    assert parsed.id == str(event["id"])
    assert [access.action for access in parsed.accesses] == list(target.ld_actions)
    assert {access.resource for access in parsed.accesses} <= {target.resource}
    assert parsed.kind == target.kind
    assert parsed.title_verb == target.title_verb


def test_launchdarkly_entry_describes_a_flag_turned_on() -> None:
    """A flag turned on reads as LaunchDarkly's audit log would show it."""
    entry = as_ld(ENABLED, base_url="https://relay.example.com")
    assert entry["_id"] == "11"
    assert entry["_links"]["self"] == {
        "href": "https://relay.example.com/api/v2/auditlog/11",
        "type": "application/json",
    }
    assert entry["date"] == 1795374322792
    assert entry["accesses"] == [
        {"action": "updateOn", "resource": "proj/default:env/production:flag/checkout"}
    ]
    assert entry["kind"] == "flag"
    assert entry["name"] == "checkout"
    assert entry["titleVerb"] == "turned on the flag"
    assert entry["title"] == "alice@example.com turned on the flag checkout in production"
    assert entry["description"] == (
        "**alice@example.com** turned on the flag `checkout` in `production` (project `default`)"
    )
    assert entry["shortDescription"] == "Turned on the flag checkout in production"
    assert entry["member"] == {"email": "alice@example.com", "_id": "42"}
    assert entry["target"] == {
        "name": "checkout",
        "resources": ["proj/default:env/production:flag/checkout"],
    }
    assert entry["parent"] == {"name": "default", "resource": "proj/default"}
    assert entry["_accountId"] == "unleash-prod"


def test_launchdarkly_date_is_the_event_time_in_milliseconds() -> None:
    """`date` is createdAt as epoch milliseconds, exact to the millisecond."""
    created = "2026-11-22T19:03:49.895Z"
    entry = as_ld({**ENABLED, "createdAt": created})
    assert entry["date"] == int(datetime.fromisoformat(created).timestamp()) * 1000 + 895


def test_launchdarkly_member_without_email_uses_the_name() -> None:
    """An actor that is not an email address becomes the member's first name."""
    entry = as_ld({**ENABLED, "createdBy": "admin", "createdByUserId": None})
    assert entry["member"] == {"firstName": "admin"}
    assert entry["title"].startswith("admin turned on the flag checkout")


def test_launchdarkly_entry_for_a_global_event_names_the_subject() -> None:
    """An event without a flag is named after its resource key and has no environment."""
    event = next(e for e in SAMPLE_EVENTS if e["type"] == "strategy-created")
    entry = as_ld(event)
    assert entry["name"] == event["data"]["name"]
    assert entry["title"] == f"migration created the strategy {event['data']['name']}"
    assert "parent" not in entry


def test_launchdarkly_body_is_compact_json() -> None:
    """The signed bytes are compact JSON (no spaces after separators)."""
    body = render(ENABLED, fmt="launchdarkly", target=map_event(ENABLED))
    assert b'", "' not in body and b'": ' not in body


def test_unknown_format_is_a_permanent_error() -> None:
    """A format other than unleash/launchdarkly cannot be retried into working."""
    with pytest.raises(UnknownFormatError, match="'slack'") as info:
        render(ENABLED, fmt="slack", target=map_event(ENABLED))
    assert isinstance(info.value, PermanentDeliveryError)
    assert not info.value.retryable


def test_test_event_is_a_clearly_marked_unleash_event() -> None:
    """The test event has type relay-test, id 0, the given time, and says it is a test."""
    event = payloads.test_event(now_ms=1_795_374_322_792)
    assert event["type"] == "relay-test"
    assert event["id"] == 0
    assert event["createdAt"] == "2026-11-22T19:05:22.792Z"
    assert event["data"]["test"] is True
    assert "test" in event["data"]["message"]


@pytest.mark.parametrize("fmt", ["unleash", "launchdarkly"])
def test_test_event_renders_in_both_formats(fmt: str) -> None:
    """The test event goes through the same rendering as real ones."""
    event = payloads.test_event(now_ms=1_795_374_322_792)
    body = json.loads(render(event, fmt=fmt, target=map_event(event)))
    if fmt == "launchdarkly":
        assert AuditLogEntryRep.from_dict(body) is not None
        assert body["date"] == 1_795_374_322_792
        assert body["name"] == "relay-test"
    else:
        assert body == event
