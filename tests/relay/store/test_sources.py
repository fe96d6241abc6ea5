"""Pull sources, their cursors and the pull lock (real Redis)."""

from __future__ import annotations

import time

import pytest

from relay.errors import InvalidRequestError
from relay.settings import Settings
from relay.store import locks, sources
from relay.store.client import Redis
from relay.store.sources import PullSource


def test_sources_are_added_listed_and_removed(redis_client: Redis, settings: Settings) -> None:
    """The CLI's contract: add, list by name, remove (True once, then False)."""
    sources.add_source(
        redis_client, name="eu", url="https://eu.example.com/", token="t1", settings=settings
    )
    sources.add_source(
        redis_client, name="ap", url="http://ap.example.com", token="t2", settings=settings
    )
    assert sources.list_sources(redis_client) == [
        PullSource("ap", "http://ap.example.com", "t2"),
        PullSource("eu", "https://eu.example.com", "t1"),
    ]
    assert sources.remove_source(redis_client, name="eu") is True
    assert sources.remove_source(redis_client, name="eu") is False
    assert [s.name for s in sources.list_sources(redis_client)] == ["ap"]


def test_adding_a_source_again_replaces_it(redis_client: Redis, settings: Settings) -> None:
    """Same name: new URL and token; the cursor starts over only if the URL changed."""
    # given
    sources.add_source(
        redis_client, name="eu", url="https://a.example.com", token="t1", settings=settings
    )
    sources.advance_cursor(redis_client, name="eu", to=40)
    # when: a new token for the same server
    sources.add_source(
        redis_client, name="eu", url="https://a.example.com/", token="t2", settings=settings
    )
    # then
    assert sources.list_sources(redis_client) == [PullSource("eu", "https://a.example.com", "t2")]
    assert sources.get_cursor(redis_client, name="eu") == 40
    # when: another server
    sources.add_source(
        redis_client, name="eu", url="https://b.example.com", token="t2", settings=settings
    )
    # then
    assert sources.get_cursor(redis_client, name="eu") is None


@pytest.mark.parametrize(
    ("name", "url", "token", "attribute"),
    [
        ("has:colon", "https://x.example.com", "t", "name"),
        ("", "https://x.example.com", "t", "name"),
        ("ok", "ftp://x.example.com", "t", "url"),
        ("ok", "not a url", "t", "url"),
        ("ok", "https://x.example.com", " ", "token"),
    ],
)
def test_a_bad_source_is_refused(
    redis_client: Redis, settings: Settings, name: str, url: str, token: str, attribute: str
) -> None:
    """Names fit in dedupe keys, URLs are http(s), tokens are not blank."""
    with pytest.raises(InvalidRequestError) as caught:
        sources.add_source(redis_client, name=name, url=url, token=token, settings=settings)
    assert [p.attribute for p in caught.value.errors] == [attribute]
    assert sources.list_sources(redis_client) == []


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:4242", "127.0.0.1 is a loopback address"),
        ("http://localhost:4242", "resolves to"),
        ("http://10.1.2.3", "a private address"),
        ("http://169.254.169.254/", "a link-local address"),
        ("http://[::ffff:127.0.0.1]:4242", "inside an IPv6 one"),
    ],
)
def test_a_private_source_url_is_refused_under_the_default_guard(
    redis_client: Redis, settings: Settings, url: str, words: str
) -> None:
    """The webhook destination guard applies when a source is stored; nothing is kept."""
    strict = settings.model_copy(update={"allow_private_destinations": False})
    with pytest.raises(InvalidRequestError) as caught:
        sources.add_source(redis_client, name="ok", url=url, token="t", settings=strict)
    [problem] = caught.value.errors
    assert problem.attribute == "url"
    assert words in problem.reason and "RELAY_ALLOWED_DESTINATION_CIDRS" in problem.reason
    assert "destination guard" in caught.value.message
    assert sources.list_sources(redis_client) == []


def test_a_listed_cidr_lets_a_private_source_be_stored(
    redis_client: Redis, settings: Settings
) -> None:
    """RELAY_ALLOWED_DESTINATION_CIDRS opens the guard for sources as for webhooks."""
    strict = settings.model_copy(
        update={"allow_private_destinations": False, "allowed_destination_cidrs": ["10.1.0.0/16"]}
    )
    sources.add_source(redis_client, name="ok", url="http://10.1.2.3", token="t", settings=strict)
    assert [s.url for s in sources.list_sources(redis_client)] == ["http://10.1.2.3"]


def test_a_source_host_that_does_not_resolve_is_refused(
    redis_client: Redis, settings: Settings
) -> None:
    """Under the default guard the host must resolve to be checked at all."""
    strict = settings.model_copy(update={"allow_private_destinations": False})
    with pytest.raises(InvalidRequestError) as caught:
        sources.add_source(
            redis_client, name="ok", url="https://no-such-host.invalid", token="t", settings=strict
        )
    assert [p.attribute for p in caught.value.errors] == ["url"]
    assert "cannot resolve" in caught.value.errors[0].reason


def test_a_pull_status_keeps_the_last_outcome(redis_client: Redis, settings: Settings) -> None:
    """A failure is kept (capped) until a later pull succeeds; removal forgets it."""
    # given
    sources.add_source(
        redis_client, name="eu", url="https://a.example.com", token="t", settings=settings
    )
    assert sources.pull_status(redis_client, name="eu") == sources.PullStatus()
    # when
    sources.record_pull(redis_client, name="eu", at_ms=1000, error="x" * 10_000)
    # then
    failed = sources.pull_status(redis_client, name="eu")
    assert (failed.last_pull_at, failed.last_error_at, failed.last_success_at) == (1000, 1000, None)
    assert failed.last_error == "x" * sources.STATUS_ERROR_CHARS
    # when
    sources.record_pull(redis_client, name="eu", at_ms=2000)
    # then
    assert sources.pull_status(redis_client, name="eu") == sources.PullStatus(
        last_pull_at=2000, last_success_at=2000, last_error_at=1000, last_error=None
    )
    # when: another server under the same name, then removal
    sources.add_source(
        redis_client, name="eu", url="https://b.example.com", token="t", settings=settings
    )
    assert sources.pull_status(redis_client, name="eu") == sources.PullStatus()
    sources.record_pull(redis_client, name="eu", at_ms=3000, error="boom")
    sources.remove_source(redis_client, name="eu")
    assert sources.pull_status(redis_client, name="eu") == sources.PullStatus()


def test_settings_define_an_implicit_unleash_source(
    redis_client: Redis, settings: Settings
) -> None:
    """RELAY_UNLEASH_URL/TOKEN add a source named `unleash`; a stored `unleash` wins."""
    configured = Settings(unleash_url="https://u.example.com/", unleash_token="admin-token")
    assert sources.sources_to_pull(redis_client, settings=configured) == [
        PullSource("unleash", "https://u.example.com", "admin-token")
    ]
    sources.add_source(
        redis_client, name="unleash", url="https://v.example.com", token="t", settings=settings
    )
    assert sources.sources_to_pull(redis_client, settings=configured) == [
        PullSource("unleash", "https://v.example.com", "t")
    ]
    assert sources.sources_to_pull(redis_client, settings=Settings(unleash_url="https://x")) == [
        PullSource("unleash", "https://v.example.com", "t")
    ]


def test_the_cursor_only_moves_forward(redis_client: Redis) -> None:
    """A slow puller finishing late cannot rewind a faster one's cursor."""
    assert sources.get_cursor(redis_client, name="eu") is None
    assert sources.advance_cursor(redis_client, name="eu", to=10) is True
    assert sources.advance_cursor(redis_client, name="eu", to=7) is False
    assert sources.get_cursor(redis_client, name="eu") == 10


def test_a_lock_has_one_holder_and_only_it_releases_or_extends(redis_client: Redis) -> None:
    """SET NX PX with an owner token: others neither take, extend nor release it."""
    token = locks.acquire(redis_client, name="pull:eu", ttl_ms=5000)
    assert token is not None
    assert locks.acquire(redis_client, name="pull:eu", ttl_ms=5000) is None
    assert locks.extend(redis_client, name="pull:eu", token="someone-else", ttl_ms=9000) is False
    assert locks.release(redis_client, name="pull:eu", token="someone-else") is False
    assert locks.extend(redis_client, name="pull:eu", token=token, ttl_ms=9000) is True
    assert locks.release(redis_client, name="pull:eu", token=token) is True
    assert locks.acquire(redis_client, name="pull:eu", ttl_ms=5000) is not None


def test_an_expired_lock_can_be_taken_over(redis_client: Redis) -> None:
    """A crashed holder blocks pulls no longer than the lock's TTL, and cannot free the next."""
    # given
    stale = locks.acquire(redis_client, name="pull:eu", ttl_ms=50)
    assert stale is not None
    # when
    time.sleep(0.15)
    fresh = locks.acquire(redis_client, name="pull:eu", ttl_ms=5000)
    # then
    assert fresh is not None
    assert locks.release(redis_client, name="pull:eu", token=stale) is False
    assert locks.extend(redis_client, name="pull:eu", token=stale, ttl_ms=5000) is False
    assert locks.acquire(redis_client, name="pull:eu", ttl_ms=5000) is None
