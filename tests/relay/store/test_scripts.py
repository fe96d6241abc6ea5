"""The Lua script registry: every .lua file loaded, EVALSHA with NOSCRIPT fallback, errors
translated (real Redis)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from relay.cli.embedded_redis import free_port, start_redis
from relay.errors import StoreError, StoreUnavailableError
from relay.store import events, keys, scripts, sources, subscription_status, tokens
from relay.store.client import Redis, connect, translate_errors
from tests.support import record_event

SHARED_FILES = {"_admit.lua", "_promote.lua", "_newest_first.lua"}


def test_every_lua_file_is_loaded_by_the_registry() -> None:
    """No orphan file: each .lua file is a registered script or shared by one."""
    on_disk = {path.name for path in scripts.LUA_DIR.glob("*.lua")}
    loaded = {file for script in scripts.REGISTRY.values() for file in script.files}
    assert loaded == on_disk
    assert {f"{name}.lua" for name in scripts.REGISTRY} == on_disk - SHARED_FILES


@pytest.mark.parametrize("name", sorted(scripts.REGISTRY))
def test_each_script_says_its_keys_and_arguments(name: str) -> None:
    """The header of each script gives its KEYS, ARGV and answer."""
    header = (scripts.LUA_DIR / f"{name}.lua").read_text().split("\n\n")[0]
    for part in ("-- KEYS:", "-- ARGV:", "-- Returns"):
        assert part in header


@pytest.mark.parametrize("name", sorted(scripts.REGISTRY))
def test_redis_knows_each_script_by_the_registry_sha(redis_client: Redis, name: str) -> None:
    """SCRIPT LOAD of the composed source answers the SHA the registry calls EVALSHA with."""
    script = scripts.REGISTRY[name]
    source = b"".join((scripts.LUA_DIR / file).read_bytes() for file in script.files)
    assert redis_client.script_load(source) == script.sha


def test_finish_forgets_the_circuit_fields_of_the_status() -> None:
    """finish.lua's HDEL of a closing circuit names CIRCUIT_FIELDS, no more, no fewer."""
    source = (scripts.LUA_DIR / "finish.lua").read_text()
    call = re.search(r"redis\.call\('HDEL', status, ('consecutiveFailures'[^)]*)\)", source)
    assert call is not None
    named = re.findall(r"'(\w+)'", call.group(1))
    assert tuple(named) == subscription_status.CIRCUIT_FIELDS


def test_scripts_run_again_after_script_flush(redis_client: Redis) -> None:
    """A Redis that forgot the scripts (restart, SCRIPT FLUSH) gets them loaded again."""
    # given: the scripts ran once, then Redis forgot them
    events.record_events(redis_client, events=[{"type": "x", "id": 1}], source="s")
    assert tokens.find_token(redis_client, secret="rly_none") is None
    redis_client.script_flush()
    record, find = scripts.REGISTRY["record"], scripts.REGISTRY["find_token"]
    assert redis_client.script_exists(record.sha, find.sha) == [False, False]
    # when
    ids = events.record_events(redis_client, events=[{"type": "x", "id": 2}], source="s")
    info, secret = tokens.create_token(redis_client, name="n", role=tokens.Role.READER)
    # then
    assert ids == [2]
    assert tokens.find_token(redis_client, secret=secret) == info
    assert redis_client.script_exists(record.sha, find.sha) == [True, True]


def test_a_script_queued_on_a_pipeline_is_loaded_before_it_runs(redis_client: Redis) -> None:
    """On a pipeline, the script is loaded (if Redis lacks it) when the pipeline executes."""
    redis_client.script_flush()
    advance = scripts.REGISTRY["advance_cursor"]
    pipe = redis_client.pipeline(transaction=True)
    advance(pipe, [keys.source_cursor("eu")], [7])
    advance(pipe, [keys.source_cursor("eu")], [3])
    assert pipe.execute() == [1, 0]
    assert sources.get_cursor(redis_client, name="eu") == 7


def test_a_script_error_is_a_store_error(redis_client: Redis) -> None:
    """A script failing in Redis raises StoreError, as other store calls do."""
    redis_client.set(keys.source_cursor("eu"), "not a number")
    with pytest.raises(StoreError, match="Redis error") as raised:
        sources.advance_cursor(redis_client, name="eu", to=1)
    assert not isinstance(raised.value, StoreUnavailableError)
    assert isinstance(raised.value.__cause__, redis.ResponseError)


def test_an_unreachable_redis_is_a_store_unavailable_error() -> None:
    """No Redis to run the script on: StoreUnavailableError."""
    client = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0), decode_responses=True)
    try:
        with pytest.raises(StoreUnavailableError):
            sources.advance_cursor(client, name="eu", to=1)
    finally:
        client.close()


def test_a_full_redis_refusing_writes_is_unavailable_not_an_error(tmp_path: Path) -> None:
    """OOM from a full Redis (maxmemory, noeviction), also relayed by a script, is a
    StoreUnavailableError (the API's 503 with Retry-After): the write may go through once
    memory is freed, so the caller should retry, unlike a script's own error."""
    # a maxmemory below what an empty Redis uses: every write is refused
    server = start_redis(tmp_path / "full", config={"maxmemory": "100kb"})
    try:
        client = connect(server.url)
        with pytest.raises(StoreUnavailableError, match="refuses writes"), translate_errors():
            client.set("key", "value")
        with pytest.raises(StoreUnavailableError, match="OOM"):
            record_event(client, source="full", createdBy="t")
        client.close()
    finally:
        server.stop()
