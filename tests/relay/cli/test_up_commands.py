"""What `relay up` prepares: the admin token, the children's commands and environment."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from relay.cli.embedded_redis import free_port, start_redis
from relay.cli.main import cmd_beat, cmd_serve, cmd_worker, parse_args
from relay.cli.up import (
    StackError,
    admin_token,
    base_url,
    child_commands,
    child_environment,
    run_up,
    warn_if_not_durable,
    without_password,
)
from relay.settings import Settings


def test_generated_admin_token_is_private_and_reused(tmp_path: Path) -> None:
    """Without RELAY_ADMIN_TOKEN a token is generated into a 0600 file and reused next start."""
    first = admin_token(tmp_path, None)
    second = admin_token(tmp_path, None)
    assert first.file == second.file == tmp_path / "admin-token"
    assert first.secret == second.secret
    assert first.secret.startswith("rly_") and len(first.secret) > 40
    assert stat.S_IMODE(first.file.stat().st_mode) == 0o600
    assert (first.generated, second.generated) == (True, False)  # the banner shows it once


def test_given_admin_token_wins_and_is_not_written(tmp_path: Path) -> None:
    """RELAY_ADMIN_TOKEN is used as is; nothing is written to the data directory."""
    token = admin_token(tmp_path, "given-secret")
    assert (token.secret, token.file) == ("given-secret", None)
    assert not (tmp_path / "admin-token").exists()


def test_empty_token_file_gets_a_new_token(tmp_path: Path) -> None:
    """An empty token file (a crash while writing) is replaced by a new token."""
    (tmp_path / "admin-token").write_text("\n")
    assert admin_token(tmp_path, None).secret.startswith("rly_")


def test_children_run_real_relay_commands(tmp_path: Path) -> None:
    """The API, worker and beat children are `relay serve/worker/beat` with up's options."""
    commands = child_commands("127.0.0.1", 9999, tmp_path)
    parsed = {name: parse_args(argv[3:]) for name, argv in commands.items()}
    assert parsed["api"].handler is cmd_serve
    assert (parsed["api"].host, parsed["api"].port) == ("127.0.0.1", 9999)
    assert parsed["worker"].handler is cmd_worker
    assert parsed["beat"].handler is cmd_beat
    assert parsed["beat"].schedule == tmp_path / "celerybeat-schedule"


def test_children_get_redis_url_token_and_the_rest_of_the_environment(tmp_path: Path) -> None:
    """Children inherit the environment plus RELAY_REDIS_URL, RELAY_ADMIN_TOKEN, RELAY_DATA_DIR."""
    env = child_environment("redis://127.0.0.1:1/0", "secret", tmp_path)
    assert env["RELAY_REDIS_URL"] == "redis://127.0.0.1:1/0"
    assert env["RELAY_ADMIN_TOKEN"] == "secret"
    assert env["RELAY_DATA_DIR"] == str(tmp_path)
    assert "PATH" in env


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080"),
        ("0.0.0.0", "http://127.0.0.1:8080"),
        ("::1", "http://[::1]:8080"),
        ("localhost", "http://localhost:8080"),
    ],
)
def test_base_url_is_reachable_from_this_machine(host: str, url: str) -> None:
    """The printed URL is one a local client can open, even for a wildcard bind."""
    assert base_url(host, 8080) == url


def test_external_redis_without_aof_or_with_eviction_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that can lose acknowledged events (AOF off, evicting) gets a warning each."""
    # given: a Redis of our own, started non-durable
    server = start_redis(tmp_path, config={"appendonly": "no", "maxmemory-policy": "allkeys-lru"})
    try:
        # when
        with caplog.at_level(logging.WARNING):
            warn_if_not_durable(Settings(redis_url=server.url))
    finally:
        server.stop()
    # then
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert "AOF is off" in warnings
    assert "allkeys-lru" in warnings


def test_unreachable_redis_is_a_warning_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    """When the durability check cannot reach Redis, it says so and lets startup go on."""
    with caplog.at_level(logging.WARNING):
        warn_if_not_durable(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    assert "could not check Redis durability" in caplog.text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://relay:s3cret@redis.example.com/1", "rediss://relay:***@redis.example.com/1"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_printed_redis_urls_hide_the_password(url: str, shown: str) -> None:
    """The banner shows where Redis is, never its password."""
    assert without_password(url) == shown


def test_up_on_an_unusable_data_dir_is_a_stack_error(tmp_path: Path) -> None:
    """A data directory that cannot be created is a one-line error, not a traceback."""
    (tmp_path / "file").write_text("")
    with pytest.raises(StackError, match=r"cannot use .*file/data"):
        run_up(Settings(), host="127.0.0.1", port=free_port(), data_dir=tmp_path / "file" / "data")
