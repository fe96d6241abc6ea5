"""What fan-outs and delivery batches tell operators: outcome counters, latency, and activity
lines with ids as fields."""

from __future__ import annotations

import logging

import pytest

from relay.observability.logs import activity_level
from relay.observability.metrics import REGISTRY
from relay.store.deliveries import Delivery, DeliveryKind, DeliveryState, Finish, NewDelivery
from workers.delivery import telemetry
from workers.delivery.attempt import Done, Prepared
from workers.delivery.retry import Outcome
from workers.http_client import SendResult

CREATED = "2024-05-01T12:00:00Z"
CREATED_MS = 1_714_564_800_000


def done(delivery_id: str, state: DeliveryState, status: int | None, outcome: Outcome) -> Done:
    """A delivery of event 7 to subscription `sub1` after one attempt answered `status`."""
    delivery = Delivery(
        id=delivery_id,
        kind=DeliveryKind.EVENT,
        sub_id="sub1",
        event_id=7,
        state=DeliveryState.PENDING,
        attempts=0,
        created_at=CREATED_MS,
        updated_at=CREATED_MS,
        next_attempt_at=None,
        delivered_at=None,
        reason="",
    )
    result = SendResult(status_code=status, duration_ms=12.0, error=None if status else "timeout")
    nxt = CREATED_MS + 5000 if state is DeliveryState.FAILED else None
    finish = Finish(delivery_id, state, next_attempt_at=nxt)
    return Done(Prepared(delivery, None), result, outcome, finish)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_outcomes_attempts_and_latency_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    """One delivered and one retried delivery: two attempts, one each outcome, one latency."""
    # given
    batch = [
        done("msg_7_sub1", DeliveryState.DELIVERED, 200, Outcome.DELIVERED),
        done("msg_8_sub1", DeliveryState.FAILED, 503, Outcome.RETRY),
    ]
    delivered = sample("relay_deliveries_total", outcome="delivered", kind="event")
    retried = sample("relay_deliveries_total", outcome="retry", kind="event")
    attempts_5xx = sample("relay_delivery_attempts_total", status="5xx")
    latencies = sample("relay_delivery_latency_seconds_count")
    latency_sum = sample("relay_delivery_latency_seconds_sum")
    # when
    with caplog.at_level(logging.DEBUG, logger="relay.activity.deliveries"):
        telemetry.attempted(
            batch,
            changed=["msg_7_sub1", "msg_8_sub1"],
            events={7: {"createdAt": CREATED}},
            now_ms=CREATED_MS + 1500,
        )
    # then
    assert sample("relay_deliveries_total", outcome="delivered", kind="event") == delivered + 1
    assert sample("relay_deliveries_total", outcome="retry", kind="event") == retried + 1
    assert sample("relay_delivery_attempts_total", status="5xx") == attempts_5xx + 1
    assert sample("relay_delivery_latency_seconds_count") == latencies + 1
    assert sample("relay_delivery_latency_seconds_sum") == pytest.approx(latency_sum + 1.5)
    delivered_line, retry = caplog.records
    assert (delivered_line.levelno, delivered_line.getMessage()) == (
        activity_level(),
        "event 7 delivered to subscription sub1: HTTP 200 in 12 ms, attempt 1",
    )
    assert (retry.levelno, retry.getMessage()) == (
        logging.INFO,
        "event 7 to subscription sub1: retry after attempt 1: HTTP 503; next in 4s",
    )
    fields = vars(retry)
    assert (fields["delivery_id"], fields["subscription_id"], fields["event_id"]) == (
        "msg_8_sub1",
        "sub1",
        7,
    )
    assert (fields["status_code"], fields["attempt"]) == (503, 1)
    assert fields["next_attempt_at"] == CREATED_MS + 5000


def test_a_delivery_another_worker_finished_counts_only_its_attempt() -> None:
    """Not in `changed` (already terminal): the attempt is counted, the outcome is not again."""
    delivered = sample("relay_deliveries_total", outcome="delivered", kind="event")
    attempts = sample("relay_delivery_attempts_total", status="2xx")
    batch = [done("msg_9_sub1", DeliveryState.DELIVERED, 204, Outcome.DELIVERED)]
    telemetry.attempted(batch, changed=[], events={}, now_ms=CREATED_MS)
    assert sample("relay_deliveries_total", outcome="delivered", kind="event") == delivered
    assert sample("relay_delivery_attempts_total", status="2xx") == attempts + 1


def test_dead_deliveries_are_logged_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    """A delivery that died needs a person: a warning naming it, its subscription and event."""
    batch = [done("msg_10_sub1", DeliveryState.DEAD, None, Outcome.RETRY)]
    with caplog.at_level(logging.INFO, logger="relay.activity.deliveries"):
        telemetry.attempted(batch, changed=["msg_10_sub1"], events={}, now_ms=CREATED_MS)
    (line,) = caplog.records
    assert line.levelno == logging.WARNING
    assert line.getMessage() == "event 7 to subscription sub1: dead after attempt 1: timeout"
    assert (vars(line)["subscription_id"], vars(line)["delivery_id"]) == ("sub1", "msg_10_sub1")


def test_an_activity_line_per_event_fanned_out_with_its_id_and_takers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One line per event in the batch, saying how many subscriptions want it."""
    # given
    event = {"type": "feature-created", "featureName": "f", "project": "p", "createdBy": "bo"}
    planned = [NewDelivery(f"msg_1_{sub}", DeliveryKind.EVENT, sub, 1) for sub in ("s1", "s2")]
    # when
    with caplog.at_level(logging.DEBUG, logger="relay.activity.events"):
        telemetry.fanning_out([(1, event), (2, None)], planned)
    # then
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            activity_level(),
            "event 1 recorded: feature-created, flag f, project p, by bo: 2 subscriptions want it",
        ),
        (activity_level(), "event 2 was trimmed before its fan-out: nothing to send"),
    ]
    assert [(vars(r)["event_id"], vars(r)["subscriptions"]) for r in caplog.records] == [
        (1, 2),
        (2, 0),
    ]
