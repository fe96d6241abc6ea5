"""Settings as operators write them: RELAY_* variables, durations, lists, CIDRs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from relay.settings import Settings, parse_duration


class _DotenvOnly(Settings):
    """Settings read from a dotenv file only: the environment's parsing, not its values."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, dotenv_settings)


def _from_env(tmp_path: Path, **variables: str) -> Settings:
    """Settings from these RELAY_* variables, whatever this machine's environment holds."""
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in variables.items()))
    return _DotenvOnly(_env_file=env_file)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("5m", 300.0),
        ("30m", 1800.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
        ("7", 7.0),
        ("1.5", 1.5),
        (" 10s ", 10.0),
        (3, 3.0),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    """Durations are `5s`, `5m`, `2h`, `1d`, `250ms` or plain seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5x", "", "s", "-5s", "5 minutes"])
def test_bad_durations_are_refused(text: str) -> None:
    """Anything else is a ValueError that shows the accepted forms."""
    with pytest.raises(ValueError, match=r"use e\.g\. 5s, 5m, 2h"):
        parse_duration(text)


def test_retry_schedule_from_the_environment(tmp_path: Path) -> None:
    """RELAY_RETRY_SCHEDULE=5s,5m,30m,2h becomes seconds, in order."""
    settings = _from_env(tmp_path, RELAY_RETRY_SCHEDULE="5s,5m,30m,2h")
    assert settings.retry_schedule == [5.0, 300.0, 1800.0, 7200.0]


def test_retry_schedule_in_plain_seconds(tmp_path: Path) -> None:
    """Plain numbers are seconds: RELAY_RETRY_SCHEDULE=1,2,4."""
    assert _from_env(tmp_path, RELAY_RETRY_SCHEDULE="1, 2,4").retry_schedule == [1.0, 2.0, 4.0]


def test_bad_retry_schedule_names_the_setting(tmp_path: Path) -> None:
    """A bad entry fails at start with the setting's name and the bad value."""
    with pytest.raises(ValidationError) as failed:
        _from_env(tmp_path, RELAY_RETRY_SCHEDULE="5s,soon")
    assert "retry_schedule" in str(failed.value) and "'soon'" in str(failed.value)


def test_scalar_settings_from_the_environment(tmp_path: Path) -> None:
    """Durations, booleans, numbers and comma lists read from RELAY_* variables."""
    settings = _from_env(
        tmp_path,
        RELAY_REDIS_URL="redis://redis:6379/0",
        RELAY_DISABLE_AFTER="2d",
        RELAY_ALLOW_PRIVATE_DESTINATIONS="true",
        RELAY_CRITICAL_ENVIRONMENTS="production, prod-eu",
        RELAY_DELIVERY_TIMEOUT="7.5",
        RELAY_RETENTION_DAYS="7",
    )
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.disable_after == 2 * 86400
    assert settings.allow_private_destinations is True
    assert settings.critical_set == frozenset({"production", "prod-eu"})
    assert settings.delivery_timeout == 7.5
    assert settings.retention_days == 7


def test_defaults(tmp_path: Path) -> None:
    """Without configuration: 5s,5m,30m,2h,5h,10h,10h retries, 20% jitter, production critical."""
    settings = _from_env(tmp_path)
    assert settings.retry_schedule == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert settings.retry_jitter == 0.2
    assert settings.disable_after == 5 * 86400
    assert settings.critical_environments == ["production"]
    assert settings.allow_private_destinations is False
    assert settings.rate_limit_per_second == 0


def test_cidr_allow_list(tmp_path: Path) -> None:
    """RELAY_ALLOWED_DESTINATION_CIDRS takes comma-separated IPv4/IPv6 networks."""
    settings = _from_env(
        tmp_path, RELAY_ALLOWED_DESTINATION_CIDRS="10.0.0.0/8, fd00::/8,192.168.1.7"
    )
    assert settings.allowed_destination_cidrs == ["10.0.0.0/8", "fd00::/8", "192.168.1.7"]


@pytest.mark.parametrize("bad", ["10.0.0.300/8", "not-a-network", "10.0.0.0/33"])
def test_bad_cidr_is_refused(tmp_path: Path, bad: str) -> None:
    """A value that is not a network fails at start, naming the setting."""
    with pytest.raises(ValidationError, match="allowed_destination_cidrs"):
        _from_env(tmp_path, RELAY_ALLOWED_DESTINATION_CIDRS=f"10.0.0.0/8,{bad}")


def test_jitter_must_be_a_fraction() -> None:
    """RELAY_RETRY_JITTER outside 0..1 is refused."""
    with pytest.raises(ValidationError, match="retry_jitter"):
        Settings(retry_jitter=1.5)


def test_require_redis_url_explains_itself() -> None:
    """Code that needs Redis gets a message naming RELAY_REDIS_URL when it is unset."""
    with pytest.raises(RuntimeError, match="RELAY_REDIS_URL is not set"):
        Settings(redis_url=None).require_redis_url()


def test_sentinels_are_read_as_host_port_pairs(tmp_path: Path) -> None:
    """RELAY_REDIS_SENTINELS takes `host:port` and `[v6]:port`, comma-separated."""
    settings = _from_env(
        tmp_path,
        RELAY_REDIS_SENTINELS="sentinel-1:26379, 10.0.0.2:26380,[::1]:26381",
        RELAY_REDIS_SENTINEL_MASTER="prod",
    )
    assert settings.redis_sentinels == ["sentinel-1:26379", "10.0.0.2:26380", "[::1]:26381"]
    assert settings.redis_sentinel_master == "prod" and settings.has_redis


@pytest.mark.parametrize("bad", ["sentinel-1", "host:", ":26379", "host:port", "host:70000"])
def test_a_malformed_sentinel_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValidationError, match="not a sentinel's host:port"):
        _from_env(tmp_path, RELAY_REDIS_SENTINELS=f"ok:26379,{bad}")


def test_a_url_and_sentinels_together_are_refused(tmp_path: Path) -> None:
    """Two answers to "which Redis" would leave the processes to guess: one of them."""
    with pytest.raises(ValidationError, match="both set"):
        _from_env(tmp_path, RELAY_REDIS_URL="redis://r:6379/0", RELAY_REDIS_SENTINELS="s:26379")


def test_the_broker_goes_through_the_sentinels_with_the_data_nodes_credentials() -> None:
    """kombu's sentinel:// list carries the primary's (quoted) credentials; the sentinels'
    own password and the service name go in the transport options."""
    settings = Settings(
        redis_sentinels=["s1:26379", "s2:26379"],
        redis_sentinel_master="prod",
        redis_username="relay",
        redis_password="p@ss:w/rd",
        redis_sentinel_password="sentinel-secret",
        redis_db=2,
    )
    assert settings.broker_url() == (
        "sentinel://relay:p%40ss%3Aw%2Frd@s1:26379/2;sentinel://relay:p%40ss%3Aw%2Frd@s2:26379/2"
    )
    options = settings.broker_transport_options()
    assert options["master_name"] == "prod"
    assert options["sentinel_kwargs"] == {
        "socket_connect_timeout": 5,
        "socket_timeout": 5,
        "password": "sentinel-secret",
    }
    assert Settings(redis_url="redis://r:6379/0").broker_url() == "redis://r:6379/0"


def test_tls_is_asked_by_the_setting_or_by_a_rediss_url(tmp_path: Path) -> None:
    """TLS verifies the server (against the CA file when given) and may present a client
    certificate; without TLS no ssl option is set."""
    ca = tmp_path / "ca.pem"
    settings = Settings(redis_sentinels=["s:26379"], redis_tls=True, redis_tls_ca_file=ca)
    assert settings.redis_tls_options() == {
        "ssl_cert_reqs": "required",
        "ssl_ca_certs": str(ca),
        "ssl_certfile": None,
        "ssl_keyfile": None,
    }
    assert settings.broker_transport_options()["sentinel_kwargs"]["ssl"] is True  # type: ignore[index]
    assert Settings(redis_url="rediss://r:6380/0").redis_uses_tls
    assert Settings(redis_url="redis://r:6379/0").redis_tls_options() == {}


def test_the_write_concern_is_bounded(tmp_path: Path) -> None:
    """RELAY_REDIS_MIN_REPLICAS is a count; RELAY_REDIS_REPLICA_TIMEOUT a duration up to 60 s."""
    settings = _from_env(
        tmp_path, RELAY_REDIS_MIN_REPLICAS="1", RELAY_REDIS_REPLICA_TIMEOUT="250ms"
    )
    assert (settings.redis_min_replicas, settings.redis_replica_timeout) == (1, 0.25)
    with pytest.raises(ValidationError):
        _from_env(tmp_path, RELAY_REDIS_MIN_REPLICAS="-1")
    with pytest.raises(ValidationError):
        _from_env(tmp_path, RELAY_REDIS_REPLICA_TIMEOUT="2m")
