"""The retention task trims by RELAY_RETENTION_DAYS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relay.settings import Settings
from relay.store import events
from relay.store.client import Redis
from workers.pull.pull_sources import apply_retention


def _days_ago(days: float) -> str:
    moment = datetime.now(UTC) - timedelta(days=days)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_events_older_than_the_retention_days_are_trimmed(
    redis_client: Redis, settings: Settings
) -> None:
    """With a 7-day window, an 8-day-old event goes and a 6-day-old one stays."""
    # given
    old, recent = events.record_events(
        redis_client,
        events=[
            {"type": "user-created", "createdBy": "a", "createdAt": _days_ago(8)},
            {"type": "user-created", "createdBy": "a", "createdAt": _days_ago(6)},
        ],
        source="s",
    )
    # when
    trimmed = apply_retention(
        redis_client, settings=settings.model_copy(update={"retention_days": 7})
    )
    # then
    assert trimmed == 1
    assert events.get_events(redis_client, ids=[old, recent])[0] is None
    assert events.get_events(redis_client, ids=[recent])[0] is not None
