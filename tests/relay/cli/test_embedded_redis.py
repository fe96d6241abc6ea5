"""The embedded Redis against another user of the machine: a password, no admin commands,
nothing readable in its data directory, and one Redis per data directory."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from relay.cli.embedded_redis import EmbeddedRedis, start_redis
from relay.cli.up import warn_if_not_durable
from relay.settings import Settings

# what a local user could do with a Redis that lets them in (rewrite files, load code, leave)
REFUSED_COMMANDS = [
    ("CONFIG", "GET", "dir"),
    ("CONFIG", "SET", "dir", "/tmp"),
    ("DEBUG", "SLEEP", "0"),
    ("MODULE", "LIST"),
    ("REPLICAOF", "127.0.0.1", "1"),
    ("SLAVEOF", "127.0.0.1", "1"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    started = start_redis(tmp_path_factory.mktemp("embedded") / "data")
    yield started
    started.stop()


def _modes(root: Path) -> dict[str, str]:
    """Every path under `root` (and itself) with its permission bits, as octal text."""
    return {
        str(path.relative_to(root)): oct(stat.S_IMODE(path.lstat().st_mode))
        for path in [root, *root.rglob("*")]
    }


def test_connecting_without_the_password_is_refused(server: EmbeddedRedis) -> None:
    """Another local user reaches the port, but no command runs without the password."""
    stranger = redis.Redis(host="127.0.0.1", port=server.port)
    with pytest.raises(redis.AuthenticationError):
        stranger.get("anything")
    guesser = redis.Redis(host="127.0.0.1", port=server.port, password="guess")
    with pytest.raises(redis.AuthenticationError):
        guesser.ping()


def test_its_url_carries_the_password(server: EmbeddedRedis) -> None:
    """The URL relay hands to its processes authenticates."""
    assert server.password and len(server.password) >= 32
    assert server.password in server.url
    assert redis.Redis.from_url(server.url).ping()


@pytest.mark.parametrize("command", REFUSED_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_admin_commands_are_refused_even_with_the_password(
    server: EmbeddedRedis, command: tuple[str, ...]
) -> None:
    """CONFIG, DEBUG, MODULE and replication commands do not exist on the embedded Redis."""
    client = redis.Redis.from_url(server.url)
    with pytest.raises(redis.ResponseError, match="unknown command"):
        client.execute_command(*command)
    assert client.ping()


def test_the_password_is_on_no_command_line(server: EmbeddedRedis) -> None:
    """`ps` shows every user the command lines: the password is not on Redis's."""
    assert server.password is not None
    command_line = " ".join(psutil.Process(server.process.pid).cmdline())
    assert "redis-server" in command_line
    assert server.password not in command_line


def test_durability_is_checked_without_config(
    server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """The start-up durability check reads INFO, so it works where CONFIG is off."""
    warn_if_not_durable(Settings(redis_url=server.url))
    assert caplog.records == []


def test_everything_under_the_data_dir_is_private(tmp_path: Path) -> None:
    """The data dir is 0700 and every file in it 0600, old ones included, the AOF too."""
    # given: a data directory an older relay left readable (0755, a 0644 log)
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    (data / "redis.log").write_text("")
    (data / "redis.log").chmod(0o644)
    # when
    server = start_redis(data)
    try:
        redis.Redis.from_url(server.url).set("secret", "value")
        aof, deadline = data / "appendonly.aof", time.monotonic() + 5
        while not aof.exists() or not aof.stat().st_size:
            assert time.monotonic() < deadline, "no AOF written"
            time.sleep(0.05)
        modes = _modes(data)
    finally:
        server.stop()
    # then
    assert "appendonly.aof" in modes
    expected = {name: ("0o700" if (data / name).is_dir() else "0o600") for name in modes}
    assert modes == expected


def test_a_second_redis_on_a_data_dir_in_use_is_refused(server: EmbeddedRedis) -> None:
    """Two Redis servers on one AOF would lose writes: the second refuses and names the first."""
    with pytest.raises(RuntimeError) as refused:
        start_redis(server.data_dir)
    assert str(server.data_dir) in str(refused.value)
    assert str(server.process.pid) in str(refused.value)


def test_a_data_dir_is_free_again_once_its_redis_is_gone(tmp_path: Path) -> None:
    """The lock dies with the Redis that held it: a SIGKILLed one does not block a restart."""
    first = start_redis(tmp_path / "data")
    first.process.kill()
    first.process.wait()
    second = start_redis(tmp_path / "data")
    try:
        assert redis.Redis.from_url(second.url).ping()
    finally:
        first.stop()
        second.stop()
