"""`relay replay`: a time range's events re-sent to one subscription, followed to the end."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from relay.cli.main import main
from relay.settings import Settings
from relay.store import events, queues, subscriptions
from relay.store.client import Redis
from tests.support import subscription


def record(client: Redis, *created_at: str) -> list[int]:
    """Production and development events, one pair per `createdAt`."""
    batch = [
        {"type": "feature-environment-enabled", "createdBy": "r", "createdAt": at,
         "project": "p", "featureName": "f", "environment": env}
        for at in created_at
        for env in ("production", "development")
    ]  # fmt: skip
    return events.record_events(client, events=batch, source="replay-test")


PRODUCTION_ONLY = [
    {"effect": "allow", "resources": ["proj/*:env/production:flag/*"], "actions": ["*"]}
]


@pytest.mark.e2e
@pytest.mark.slow
def test_replay_resends_the_included_events_of_the_range_and_follows_them(
    settings: Settings,
    redis_client: Redis,
    receivers: Callable[[], Any],
    start_worker: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Only the range's events the policy includes are re-sent, as new webhook-ids; exit 0."""
    # given
    start_worker(settings)
    receiver = receivers()
    sub = subscription(redis_client, url=receiver.url, name="replayed", statements=PRODUCTION_ONLY)
    ids = record(
        redis_client, "2024-01-01T10:00:00Z", "2024-01-02T10:00:00Z", "2024-03-01T00:00:00Z"
    )
    # when
    argv = ["replay", "--subscription", sub.id, "--from", "2024-01-01T00:00:00Z"]
    code = main([*argv, "--to", "2024-01-31T00:00:00Z", "--timeout", "30"], settings=settings)
    out = capsys.readouterr().out
    # then
    assert code == 0
    assert json.loads(out) == {"count": 2, "states": {"delivered": 2}}
    received = receiver.wait_for(2)
    webhook_ids = sorted(r.headers["webhook-id"] for r in received)
    assert [i.split("_")[1] for i in webhook_ids] == [str(ids[0]), str(ids[2])]
    assert all(f"_{sub.id}_r" in i for i in webhook_ids)  # new ids, not the originals'


def test_replay_without_waiting_leaves_the_deliveries_to_the_workers(
    settings: Settings, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--no-wait` creates the deliveries, due now, and returns at once; `--from 2h` = 2h ago."""
    # given
    sub = subscription(redis_client, name="replayed")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record(redis_client, now)
    # when
    code = main(
        ["replay", "--subscription", sub.id, "--from", "2h", "--no-wait"], settings=settings
    )
    # then
    assert code == 0
    assert f"replaying 2 events to {sub.id}" in capsys.readouterr().err.replace("\n", " ")
    assert queues.queue_depths(redis_client).due == 2


def test_replay_prints_a_writers_subscription_name_as_text(
    settings: Settings, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """The name is a writer's: its rich markup is shown, not obeyed; its escapes escaped."""
    sub = subscription(redis_client, name="[link=http://evil/]mine[/link]\x1b[2J")
    record(redis_client, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    code = main(
        ["replay", "--subscription", sub.id, "--from", "2h", "--no-wait"], settings=settings
    )
    err = capsys.readouterr().err.replace("\n", "")
    assert code == 0
    assert "[link=http://evil/]mine[/link]\\x1b[2J" in err and "\x1b" not in err


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["--subscription", "nope", "--from", "1h"], 1, "no subscription nope"),
        (["--from", "yesterday"], 2, "--from 'yesterday'"),
        (["--from", "1h", "--to", "2h"], 2, "--from is after --to"),
    ],
)
def test_replay_refuses_what_it_cannot_do(
    settings: Settings,
    redis_client: Redis,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    says: str,
) -> None:
    """An unknown subscription, a time it cannot read, or an empty range: a clear error."""
    sub = subscription(redis_client, name="replayed")
    full = argv if "--subscription" in argv else ["--subscription", sub.id, *argv]
    assert main(["replay", *full], settings=settings) == code
    assert says in capsys.readouterr().err


def test_replay_to_a_subscription_that_is_off_is_refused(
    settings: Settings, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """A subscription that is off gets nothing replayed (turn it on first), as in the API."""
    sub = subscription(redis_client, name="replayed")
    subscriptions.turn_off(redis_client, sub_id=sub.id, reason="manual")
    assert main(["replay", "--subscription", sub.id, "--from", "1h"], settings=settings) == 1
    assert "is off" in capsys.readouterr().err
    assert queues.queue_depths(redis_client).due == 0
