"""The one settings class shared by the API, the CLI and the workers (prefix `RELAY_`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
MAX_TOKEN_CHARS = 1024  # the longest API token accepted, RELAY_ADMIN_TOKEN included
# what a token may contain: printable ASCII without spaces. Anything else (latin-1 bytes a
# header decodes to, UTF-8) cannot be a token and is refused before it is compared or hashed
_TOKEN = re.compile(rf"[\x21-\x7e]{{1,{MAX_TOKEN_CHARS}}}")


def parse_duration(text: str | float | int) -> float:
    """Seconds in `5s`, `5m`, `2h`, `1d`, `250ms` or a plain number of seconds."""
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 5s, 5m, 2h, 1d or plain seconds)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def sentinel_address(text: str) -> tuple[str, int]:
    """(host, port) of a sentinel's `host:port` (`[v6]:port` for an IPv6 address)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a sentinel's host:port: {text!r}")
    return host, int(port)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _split_checked(value: object, check: Callable[[str], object]) -> object:
    """`_split_csv`, each item passed to `check`, which raises ValueError on a bad one."""
    items = _split_csv(value)
    if isinstance(items, list):
        for item in items:
            check(str(item))
    return items


class Settings(BaseSettings):
    """Every knob of the relay; read from `RELAY_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="RELAY_", extra="ignore")

    redis_url: str | None = Field(
        default=None, description="Redis URL; unset means `relay up` starts the embedded one"
    )
    # Sentinel, in place of a URL: the current primary is asked of the sentinels at each
    # (re)connect, so every process follows a failover without a restart
    redis_sentinels: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="sentinels as `host:port,host:port`; replaces the URL"
    )
    redis_sentinel_master: str = Field(default="relay", description="the sentinels' service name")
    redis_sentinel_password: str | None = Field(
        default=None, description="the sentinels' own AUTH password, when they require one"
    )
    redis_username: str | None = Field(default=None, description="Redis ACL user (data nodes)")
    redis_password: str | None = Field(
        default=None, description="Redis AUTH password (data nodes); a URL's own wins"
    )
    redis_db: int = Field(default=0, ge=0, description="database number with sentinels")
    redis_tls: bool = Field(default=False, description="TLS to Redis and sentinels (= rediss://)")
    redis_tls_ca_file: Path | None = Field(default=None, description="CA bundle to verify Redis")
    redis_tls_cert_file: Path | None = Field(default=None, description="client certificate")
    redis_tls_key_file: Path | None = Field(default=None, description="client certificate's key")
    redis_min_replicas: int = Field(
        default=0,
        ge=0,
        description="replicas that must hold an acknowledged write (Redis WAIT); else 503",
    )
    redis_replica_timeout: Annotated[float, NoDecode] = Field(
        default=1.0, gt=0, le=60, description="how long a write waits for those replicas"
    )
    admin_token: str | None = Field(default=None, description="bootstrap admin token")
    data_dir: Path = Field(default=Path(".relay"), description="embedded Redis data, tokens")
    public_url: str = Field(
        default="", description="relay's URL as its users reach it, for links in messages"
    )
    integrations_dir: Path | None = Field(
        default=None, description="a folder of `<key>/manifest.json` integrations (and templates)"
    )

    retry_schedule: Annotated[list[float], NoDecode] = Field(
        default=[5, 300, 1800, 7200, 18000, 36000, 36000],
        description="delays between attempts: `5s,5m,30m,2h` or plain seconds `1,2,4`",
    )
    retry_jitter: float = Field(default=0.2, ge=0, le=1)
    retry_after_cap: float = Field(default=3600.0, description="upper bound on Retry-After (s)")
    disable_after: Annotated[float, NoDecode] = Field(
        default=5 * 86400.0, description="turn off a subscription failing this long (duration)"
    )
    allow_private_destinations: bool = False
    allowed_destination_cidrs: Annotated[list[str], NoDecode] = Field(default_factory=list)
    critical_environments: Annotated[list[str], NoDecode] = Field(default=["production"])

    delivery_connect_timeout: float = 5.0
    delivery_timeout: float = 15.0
    delivery_max_response_bytes: int = 64 * 1024
    delivery_concurrency: int = Field(default=256, ge=1, description="in-flight sends per worker")
    delivery_lease: float = Field(default=60.0, description="seconds a claimed delivery is held")
    subscription_max_in_flight: int = Field(
        default=64, ge=1, description="sends in flight to one subscription, all workers together"
    )
    circuit_failures: int = Field(
        default=5, ge=1, description="consecutive timeouts/connection failures opening a circuit"
    )
    circuit_cooldown: float = Field(default=30.0, gt=0, description="first wait before a probe (s)")
    circuit_cooldown_max: float = Field(default=900.0, gt=0, description="longest wait (s)")

    retention_days: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="largest request body")
    rate_limit_per_second: float = Field(default=0.0, description="per token; 0 = off")
    rate_limit_burst: int = Field(default=100, ge=1)
    auth_failure_limit: int = Field(
        default=100, ge=0, description="failed authentications per client address per window"
    )
    auth_failure_window: Annotated[float, NoDecode] = Field(
        default=60.0, gt=0, description="window of auth_failure_limit (duration)"
    )
    forwarded_allow_ips: str = Field(
        default="", description="proxies whose X-Forwarded-For is trusted (uvicorn's syntax)"
    )
    max_connections: int = Field(default=1000, ge=1, description="open connections per API process")
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, description="request line + headers")
    header_timeout: Annotated[float, NoDecode] = Field(
        default=10.0, gt=0, description="to send a request's line and headers (duration)"
    )
    body_timeout: Annotated[float, NoDecode] = Field(
        default=30.0, gt=0, description="to send a request's whole body (duration)"
    )

    unleash_url: str | None = Field(default=None, description="Unleash server to pull events")
    unleash_token: str | None = None
    poll_interval: float = Field(default=30.0, gt=0)
    pull_connect_timeout: float = Field(default=5.0, gt=0, description="pull sources (s)")
    pull_timeout: float = Field(
        default=15.0, gt=0, description="each pull request, whole: a total deadline (s)"
    )
    pull_max_page_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="largest page of a pull, decompressed"
    )

    # subscriptions (writers): every one is matched against every event, listed to readers
    max_subscriptions: int = Field(default=10_000, ge=1, description="subscriptions in all")
    max_statements: int = Field(default=50, ge=1, description="policy statements per subscription")
    max_policy_entries: int = Field(
        default=250, ge=1, description="resources + actions (and not-) of all its statements"
    )
    max_total_policy_entries: int = Field(
        default=50_000, ge=1, description="policy entries of all subscriptions together"
    )
    max_subscription_bytes: int = Field(
        default=64 * 1024, ge=4096, description="a subscription's document as JSON, also mid-patch"
    )

    worker_heartbeat_ttl: float = 30.0
    log_level: str = "INFO"

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _parse_schedule(cls, value: object) -> object:
        items = _split_csv(value)
        if isinstance(items, list):
            return [parse_duration(item) for item in items]
        return items

    @field_validator(
        "disable_after",
        "auth_failure_window",
        "header_timeout",
        "body_timeout",
        "redis_replica_timeout",
        mode="before",
    )
    @classmethod
    def _parse_durations(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("admin_token")
    @classmethod
    def _check_admin_token(cls, value: str | None) -> str | None:
        # it is compared with what clients send in a header: bytes a header cannot carry
        # (or that the relay's token parsing treats as separators) make a token nobody can use
        problem = admin_token_problem(value) if value is not None else None
        if problem:
            raise ValueError(f"{problem}, or unset")
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _parse_sentinels(cls, value: object) -> object:
        return _split_checked(value, sentinel_address)

    @model_validator(mode="after")
    def _one_redis(self) -> Settings:
        if self.redis_url and self.redis_sentinels:
            raise ValueError(
                "RELAY_REDIS_URL and RELAY_REDIS_SENTINELS are both set: set one "
                "(with sentinels, the primary is asked of them)"
            )
        return self

    @field_validator("critical_environments", mode="before")
    @classmethod
    def _parse_envs(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("allowed_destination_cidrs", mode="before")
    @classmethod
    def _parse_cidrs(cls, value: object) -> object:
        return _split_checked(value, lambda item: ipaddress.ip_network(item, strict=False))

    @property
    def critical_set(self) -> frozenset[str]:
        return frozenset(self.critical_environments)

    @property
    def has_redis(self) -> bool:
        """Whether a Redis is configured (a URL or sentinels); else only `relay up` runs."""
        return bool(self.redis_url or self.redis_sentinels)

    def require_redis(self) -> None:
        """A clear error for the commands that need a Redis when none is configured."""
        if not self.has_redis:
            raise RuntimeError(
                "neither RELAY_REDIS_URL nor RELAY_REDIS_SENTINELS is set "
                "(only `relay up` starts Redis itself)"
            )

    def require_redis_url(self) -> str:
        """The Redis URL (tools and tests that connect to one server), or a clear error."""
        if not self.redis_url:
            raise RuntimeError("RELAY_REDIS_URL is not set (only `relay up` starts Redis itself)")
        return self.redis_url

    @property
    def redis_uses_tls(self) -> bool:
        return self.redis_tls or (self.redis_url or "").startswith("rediss://")

    def redis_tls_options(self) -> dict[str, str | None]:
        """redis-py's (and kombu's) `ssl_*` connection options; {} without TLS."""
        if not self.redis_uses_tls:
            return {}
        return {
            "ssl_cert_reqs": "required",
            "ssl_ca_certs": _text_or_none(self.redis_tls_ca_file),
            "ssl_certfile": _text_or_none(self.redis_tls_cert_file),
            "ssl_keyfile": _text_or_none(self.redis_tls_key_file),
        }

    def broker_url(self) -> str | None:
        """The Celery broker: the Redis URL, or kombu's `sentinel://` list (each sentinel
        with the data nodes' credentials, which kombu gives the primary's connections)."""
        if not self.redis_sentinels:
            return self.redis_url
        auth = ""
        if self.redis_password is not None:
            auth = f"{quote(self.redis_username or '', safe='')}:"
            auth += f"{quote(self.redis_password, safe='')}@"
        return ";".join(
            f"sentinel://{auth}{address}/{self.redis_db}" for address in self.redis_sentinels
        )

    def broker_transport_options(self) -> dict[str, object]:
        """kombu's transport options for the broker (the sentinels' service and AUTH)."""
        if not self.redis_sentinels:
            return {}
        sentinel_kwargs: dict[str, object] = {"socket_connect_timeout": 5, "socket_timeout": 5}
        if self.redis_sentinel_password is not None:
            sentinel_kwargs["password"] = self.redis_sentinel_password
        if self.redis_uses_tls:
            sentinel_kwargs.update(ssl=True, **self.redis_tls_options())
        return {"master_name": self.redis_sentinel_master, "sentinel_kwargs": sentinel_kwargs}


def _text_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


def is_well_formed_token(token: str) -> bool:
    """Whether `token` could be an API token at all (the API's check and the setting's)."""
    return _TOKEN.fullmatch(token) is not None


def admin_token_problem(token: str) -> str | None:
    """What is wrong with `token` as the bootstrap admin token, or None."""
    if is_well_formed_token(token):
        return None
    return (
        "must be 1 to 1024 printable ASCII characters without spaces "
        "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    )


def settings_problems(error: ValidationError) -> str:
    """What is wrong with the `RELAY_*` variables, one line each, without their values
    (pydantic's own text repeats them, and one may be a secret)."""
    lines = []
    for problem in error.errors():
        name = "RELAY_" + "_".join(str(part) for part in problem["loc"]).upper()
        reason = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"{name}: {reason}")
    return "\n".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once from the environment (tests build their own and inject them)."""
    return Settings()
