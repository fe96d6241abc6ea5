"""The sentences a person at `relay up` reads: one per event fanned out, one per delivery outcome.

Event fields are the producer's and subscription names the writer's: neither may forge a
second log line, move the cursor or recolour the terminal, nor fill the screen.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from relay.observability.logs import TextFormatter
from relay.store.deliveries import Delivery, DeliveryKind, DeliveryState, Finish
from relay.store.subscriptions import SubscriptionRecord
from workers.delivery import activity
from workers.delivery.attempt import Done, Prepared
from workers.http_client import SendResult

NOW = 1_800_000_000_000
SUB_ID = "6014f7ee84db3b6f4475e03a"
ENABLED: dict[str, Any] = {
    "type": "feature-environment-enabled",
    "featureName": "checkout.v2",
    "project": "default",
    "environment": "production",
    "createdBy": "alice@example.com",
}

EVENT_CASES: list[tuple[str, dict[str, Any] | None, int, str]] = [
    (
        "flag in an environment, one subscription",
        ENABLED,
        1,
        "event 1 recorded: feature-environment-enabled, flag checkout.v2, "
        "default/production, by alice@example.com: 1 subscription wants it",
    ),
    (
        "no environment, two subscriptions",
        {**ENABLED, "type": "feature-created", "environment": None},
        2,
        "event 1 recorded: feature-created, flag checkout.v2, project default, "
        "by alice@example.com: 2 subscriptions want it",
    ),
    (
        "no flag, project or environment",
        {"type": "api-token-created", "createdBy": "admin", "project": "*", "environment": "*"},
        0,
        "event 1 recorded: api-token-created, */*, by admin: no subscription wants it",
    ),
    (
        "fields that are not strings are left out",
        {"type": "x", "featureName": 5, "project": ["p"], "createdBy": {"id": 1}},
        0,
        "event 1 recorded: x: no subscription wants it",
    ),
    (
        "no type",
        {"createdBy": "bo"},
        0,
        "event 1 recorded: an event of no type, by bo: no subscription wants it",
    ),
    (
        "trimmed before its fan-out",
        None,
        0,
        "event 1 was trimmed before its fan-out: nothing to send",
    ),
]


@pytest.mark.parametrize(
    ("event", "wanted", "expected"),
    [case[1:] for case in EVENT_CASES],
    ids=[case[0] for case in EVENT_CASES],
)
def test_an_event_line_says_what_was_recorded_and_who_wants_it(
    event: dict[str, Any] | None, wanted: int, expected: str
) -> None:
    """Type, flag, project/environment and author as recorded; parts it lacks are left out."""
    assert activity.event_line(1, event, wanted=wanted) == expected


FORGED = "\n00:00:00 event 2 recorded: feature-archived, flag everything: 9 subscriptions"
HOSTILE_FIELDS = [
    ("newline forging a second line", FORGED),
    ("carriage return overwriting the line", "x\r00:00:00 all good"),
    ("ANSI: clear the screen, red text", "\x1b[2J\x1b[31mred"),
    ("C1 control sequence introducer", "\x9b31m"),
    ("right-to-left override", "abc\u202edef"),
    ("unicode line separator", "a\u2028b\u2029c"),
    ("backspaces", "admin\b\b\b\b\bmallory"),
]


@pytest.mark.parametrize(
    "hostile", [case[1] for case in HOSTILE_FIELDS], ids=[case[0] for case in HOSTILE_FIELDS]
)
@pytest.mark.parametrize("field", ["type", "featureName", "project", "environment", "createdBy"])
def test_a_hostile_event_field_cannot_forge_lines_or_escape_sequences(
    field: str, hostile: str
) -> None:
    """Control characters in any field reach the terminal escaped: one line, nothing hidden."""
    # given: a producer-controlled field carrying control characters
    event = {**ENABLED, field: hostile}
    # when: rendered as the terminal shows it
    text = on_terminal(activity.event_line(1, event, wanted=1))
    # then: one line, only printable characters, the attempt visible in escaped form
    assert "\n" not in text
    assert text.isprintable(), repr(text)
    assert "\\" in text


def test_a_long_event_field_is_cut_short() -> None:
    """A 255-character flag name (the most ingest allows) shows at most 80 characters."""
    text = activity.event_line(1, {**ENABLED, "featureName": "f" * 255}, wanted=1)
    assert "f" * 79 + "…" in text
    assert "f" * 80 not in text


def delivery(
    kind: DeliveryKind = DeliveryKind.EVENT, *, attempts: int = 0, event_id: int | None = 1
) -> Delivery:
    return Delivery(
        id=f"msg_1_{SUB_ID}",
        kind=kind,
        sub_id=SUB_ID,
        event_id=event_id,
        state=DeliveryState.PENDING,
        attempts=attempts,
        created_at=NOW,
        updated_at=NOW,
        next_attempt_at=None,
        delivered_at=None,
        reason="",
    )


def record(name: str = "prod flags") -> SubscriptionRecord:
    return SubscriptionRecord(
        id=SUB_ID,
        integration_key="webhook",
        name=name,
        config={},
        statements=[],
        on=True,
        tags=[],
        created_at=NOW,
    )


def done(
    finish: Finish,
    result: SendResult | None,
    *,
    item: Delivery | None = None,
    sub: SubscriptionRecord | None = None,
) -> Done:
    return Done(Prepared(item or delivery(), sub or record()), result, None, finish)


def ok(status: int = 200) -> SendResult:
    return SendResult(status_code=status, duration_ms=12.4)


def failed(error: str) -> SendResult:
    return SendResult(status_code=None, duration_ms=3.0, error=error)


def finish(state: DeliveryState, *, reason: str = "", next_in_ms: int | None = None) -> Finish:
    next_at = None if next_in_ms is None else NOW + next_in_ms
    return Finish(f"msg_1_{SUB_ID}", state, next_attempt_at=next_at, reason=reason)


DELIVERED, FAILED, DEAD = DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.DEAD
TARGET = '"prod flags" (webhook 6014f7ee)'
DELIVERY_CASES: list[tuple[str, Done, str, str]] = [
    (
        "delivered",
        done(finish(DELIVERED), ok()),
        "delivered",
        f"event 1 delivered to {TARGET}: HTTP 200 in 12 ms, attempt 1",
    ),
    (
        "retry after an error",
        done(
            finish(FAILED, next_in_ms=300_000),
            failed("cannot resolve hooks.example.com: [Errno -2] Name or service not known"),
        ),
        "retry",
        f"event 1 to {TARGET}: retry after attempt 1: cannot resolve hooks.example.com: "
        "[Errno -2] Name or service not known; next in 5m",
    ),
    (
        "retry after a 503, third attempt",
        done(finish(FAILED, next_in_ms=95_000), ok(503), item=delivery(attempts=2)),
        "retry",
        f"event 1 to {TARGET}: retry after attempt 3: HTTP 503; next in 1m 35s",
    ),
    (
        "retry in hours",
        done(finish(FAILED, next_in_ms=7_500_000), ok(500), item=delivery(attempts=7)),
        "retry",
        f"event 1 to {TARGET}: retry after attempt 8: HTTP 500; next in 2h 5m",
    ),
    (
        "dead after the last retry",
        done(finish(DEAD, reason="gave up after 10 attempts"), ok(500), item=delivery(attempts=9)),
        "dead",
        f"event 1 to {TARGET}: dead after attempt 10: HTTP 500 (gave up after 10 attempts)",
    ),
    (
        "dead, refused by the guard (the reason is the error)",
        done(finish(DEAD, reason="10.0.0.1 is private"), failed("10.0.0.1 is private")),
        "dead",
        f"event 1 to {TARGET}: dead after attempt 1: 10.0.0.1 is private",
    ),
    (
        "gone",
        done(finish(DeliveryState.GONE, reason="receiver answered 410 Gone"), ok(410)),
        "gone",
        f"event 1 to {TARGET}: gone after attempt 1: HTTP 410 (receiver answered 410 Gone)",
    ),
    (
        "skipped without an attempt",
        done(finish(DeliveryState.SKIPPED, reason="the subscription is off"), None),
        "skipped",
        f"event 1 to {TARGET}: skipped: the subscription is off",
    ),
    (
        "a test delivery",
        done(finish(DELIVERED), ok(204), item=delivery(DeliveryKind.TEST, event_id=None)),
        "delivered",
        f"test event delivered to {TARGET}: HTTP 204 in 12 ms, attempt 1",
    ),
    (
        "a failed test delivery",
        done(
            finish(DEAD, reason="test deliveries are tried once"),
            ok(500),
            item=delivery(DeliveryKind.TEST, event_id=None),
        ),
        "dead",
        f"test event to {TARGET}: dead after attempt 1: HTTP 500 (test deliveries are tried once)",
    ),
    (
        "a replay",
        done(finish(DELIVERED), ok(), item=delivery(DeliveryKind.REPLAY, attempts=0)),
        "delivered",
        f"event 1 (replay) delivered to {TARGET}: HTTP 200 in 12 ms, attempt 1",
    ),
    (
        "its subscription was deleted",
        Done(Prepared(delivery(), None), None, None, finish(DEAD, reason="no subscription")),
        "dead",
        "event 1 to subscription 6014f7ee: dead: no subscription",
    ),
]


@pytest.mark.parametrize(
    ("item", "outcome", "expected"),
    [case[1:] for case in DELIVERY_CASES],
    ids=[case[0] for case in DELIVERY_CASES],
)
def test_a_delivery_line_says_what_happened_where_and_what_next(
    item: Done, outcome: str, expected: str
) -> None:
    """Event, subscription name and integration, the attempt's answer, and the next try."""
    assert activity.delivery_line(item, outcome, now_ms=NOW) == expected


@pytest.mark.parametrize(
    "hostile", [case[1] for case in HOSTILE_FIELDS], ids=[case[0] for case in HOSTILE_FIELDS]
)
def test_a_hostile_subscription_name_or_error_cannot_forge_lines(hostile: str) -> None:
    """A writer's subscription name and an error text reach the terminal escaped, on one line."""
    item = done(finish(FAILED, next_in_ms=5000), failed(hostile), sub=record(hostile))
    text = on_terminal(activity.delivery_line(item, "retry", now_ms=NOW))
    assert "\n" not in text
    assert text.isprintable(), repr(text)


def on_terminal(message: str) -> str:
    """`message` as an activity record, formatted as `relay up` shows it on a terminal."""
    line = logging.LogRecord("relay.activity.events", logging.INFO, "", 0, message, None, None)
    return TextFormatter("worker").format(line)
