"""What one attempt's result means, and when the next attempt is due."""

from __future__ import annotations

import random

import pytest

from relay.settings import Settings
from relay.store.deliveries import Reach
from workers.delivery.retry import Outcome, classify, next_delay, reach
from workers.http_client import SendResult

SCHEDULE = Settings(retry_schedule=[5, 300, 1800], retry_jitter=0.2, retry_after_cap=3600)
EXACT = Settings(retry_schedule=[5, 300, 1800], retry_jitter=0.0, retry_after_cap=3600)


def result(status: int | None, *, error: str | None = None, refused: bool = False) -> SendResult:
    return SendResult(status_code=status, duration_ms=1.0, error=error, refused=refused)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (result(200), Outcome.DELIVERED),
        (result(201), Outcome.DELIVERED),
        (result(204), Outcome.DELIVERED),
        (result(299), Outcome.DELIVERED),
        (result(200, error="timed out reading the response"), Outcome.DELIVERED),
        (result(410), Outcome.GONE),
        (result(None, error="destination refused: loopback", refused=True), Outcome.DEAD),
        (result(301), Outcome.RETRY),
        (result(302), Outcome.RETRY),
        (result(307), Outcome.RETRY),
        (result(400), Outcome.RETRY),
        (result(401), Outcome.RETRY),
        (result(404), Outcome.RETRY),
        (result(409), Outcome.RETRY),
        (result(429), Outcome.RETRY),
        (result(500), Outcome.RETRY),
        (result(502), Outcome.RETRY),
        (result(503), Outcome.RETRY),
        (result(199), Outcome.RETRY),
        (result(None, error="timed out (read)"), Outcome.RETRY),
        (result(None, error="connection failed: refused"), Outcome.RETRY),
        (result(None, error="cannot resolve the destination"), Outcome.RETRY),
    ],
)
def test_classify(sent: SendResult, expected: Outcome) -> None:
    """2xx delivered, 410 gone, refused dead, everything else (redirects too) retried."""
    assert classify(sent) is expected


@pytest.mark.parametrize(("attempt", "scheduled"), [(1, 5), (2, 300), (3, 1800)])
def test_delay_follows_the_schedule_without_jitter(attempt: int, scheduled: float) -> None:
    """Attempt n waits retry_schedule[n-1] when jitter is off."""
    assert next_delay(attempt=attempt, retry_after=None, settings=EXACT) == scheduled


@pytest.mark.parametrize("settings", [EXACT, SCHEDULE])
def test_delay_is_none_once_the_schedule_is_exhausted(settings: Settings) -> None:
    """After the last scheduled retry there is no next attempt: the delivery is dead."""
    assert next_delay(attempt=4, retry_after=None, settings=settings) is None
    assert next_delay(attempt=4, retry_after=60, settings=settings) is None


def test_attempt_counts_from_one() -> None:
    """Attempt 0 is a caller's mistake, not a delay."""
    with pytest.raises(ValueError, match="from 1"):
        next_delay(attempt=0, retry_after=None, settings=EXACT)


@pytest.mark.parametrize(("attempt", "scheduled"), [(1, 5), (2, 300), (3, 1800)])
def test_jitter_stays_within_its_fraction(attempt: int, scheduled: float) -> None:
    """Jittered delays spread over +-retry_jitter of the scheduled delay, no further."""
    rng = random.Random(1234)
    delays = [
        next_delay(attempt=attempt, retry_after=None, settings=SCHEDULE, rng=rng)
        for _ in range(500)
    ]
    values = [d for d in delays if d is not None]
    assert len(values) == 500
    assert all(scheduled * 0.8 <= d <= scheduled * 1.2 for d in values)
    # the spread is real: both halves of the range are used
    assert min(values) < scheduled * 0.9 and max(values) > scheduled * 1.1


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    """The same seed gives the same delays."""

    def draw(seed: int) -> list[float | None]:
        rng = random.Random(seed)
        return [
            next_delay(attempt=2, retry_after=None, settings=SCHEDULE, rng=rng) for _ in range(5)
        ]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (None, 300),
        (0, 300),
        (-30, 300),
        (10, 300),
        (300, 300),
        (900, 900),
        (3600, 3600),
        (86_400, 3600),
        (float("inf"), 3600),
    ],
)
def test_retry_after_lengthens_the_wait_up_to_the_cap(
    retry_after: float | None, expected: float
) -> None:
    """The wait is max(scheduled, min(Retry-After, retry_after_cap)): never shorter."""
    assert next_delay(attempt=2, retry_after=retry_after, settings=EXACT) == expected


def test_retry_after_wins_over_jitter_when_longer() -> None:
    """A longer Retry-After is honoured exactly, whatever the jitter drew."""
    delay = next_delay(attempt=1, retry_after=120, settings=SCHEDULE, rng=random.Random(3))
    assert delay == 120


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (result(200), Reach.ANSWERED),
        (result(500), Reach.ANSWERED),  # the receiver is there: its answer is for the schedule
        (result(None, error="timed out (total), 15.00 s into the exchange"), Reach.UNREACHABLE),
        (result(None, error="timed out (connect)"), Reach.UNREACHABLE),
        (result(None, error="connection failed: [Errno 111] refused"), Reach.UNREACHABLE),
        (result(None, error="cannot resolve hooks.example: no addresses"), Reach.UNREACHABLE),
        (result(None, error="destination refused: loopback", refused=True), Reach.NONE),
        (result(None, error="protocol error: invalid request: header"), Reach.NONE),
    ],
)
def test_what_counts_for_the_circuit(sent: SendResult, expected: Reach) -> None:
    """Timeouts and connection failures count toward opening a circuit; any answer resets it."""
    assert reach(sent) is expected
