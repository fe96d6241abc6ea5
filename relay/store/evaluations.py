"""Flag evaluation counts from Unleash client metrics, per environment, flag, app and minute.

A metrics bucket covers `start`..`stop`; its counts are spread over the minutes it
overlaps in proportion to the overlap (whole numbers, largest remainder first), so a
bucket straddling a flag event lands on both sides of it as it did in reality.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from relay.store import keys
from relay.store.client import Redis, translate_errors

MINUTE_MS = 60_000
MAX_BUCKET_MINUTES = 60
SEP = "\x1f"  # between app and variation in a minute hash's fields


@dataclass(frozen=True, order=True)
class Variation:
    """One evaluated outcome: `bool` (`true`/`false`, from yes/no) or a `variant` name."""

    kind: str
    name: str

    @property
    def value(self) -> bool | str:
        """The variation's value on the wire: a JSON boolean or the variant's name."""
        return self.name == "true" if self.kind == "bool" else self.name

    @property
    def label(self) -> str:
        return self.name if self.kind == "bool" else f"variant {self.name}"


TRUE = Variation("bool", "true")
FALSE = Variation("bool", "false")

__all__ = [
    "FALSE",
    "MAX_BUCKET_MINUTES",
    "MINUTE_MS",
    "TRUE",
    "ToggleCounts",
    "Variation",
    "apps_by_flag",
    "evaluated_flags",
    "record_evaluations",
    "spread",
]


@dataclass(frozen=True)
class ToggleCounts:
    """One toggle's counts in a bucket, as Unleash reports them."""

    yes: int
    no: int
    variants: Mapping[str, int] = field(default_factory=dict)

    def by_variation(self) -> dict[Variation, int]:
        counts = {TRUE: self.yes, FALSE: self.no}
        counts.update({Variation("variant", name): n for name, n in self.variants.items()})
        return {variation: n for variation, n in counts.items() if n > 0}


def record_evaluations(
    client: Redis,
    *,
    environment: str,
    app: str,
    start_ms: int,
    stop_ms: int,
    toggles: Mapping[str, ToggleCounts],
    retention_s: int,
    now_ms: int,
) -> int:
    """Add one bucket's counts in one transaction; returns the evaluations kept.

    Minutes already older than the retention are skipped: they would expire at once.
    """
    spans = spread(start_ms, stop_ms)
    expired = (now_ms // 1000 - retention_s) * 1000 // MINUTE_MS
    minutes = [(m, w) for m, w in spans if m >= expired]
    if not minutes:
        return 0
    bucket = _Bucket(environment, app, minutes, retention_s, expired)
    kept = 0
    with translate_errors():
        pipe = client.pipeline(transaction=True)
        flags = []
        for flag, counts in toggles.items():
            added = _add_toggle(pipe, bucket, flag, counts)
            if added:
                flags.append(flag)
                kept += added
        for key in (keys.evaluated_flags(environment), keys.app_evaluated_flags(environment, app)):
            if flags:
                pipe.sadd(key, *flags)
                pipe.expire(key, retention_s)
        pipe.execute()
    return kept


@dataclass(frozen=True)
class _Bucket:
    environment: str
    app: str
    minutes: Sequence[tuple[int, int]]  # (minute, weight)
    retention_s: int
    expired: int  # minutes before this one are past the retention


def _add_toggle(pipe: Redis, bucket: _Bucket, flag: str, counts: ToggleCounts) -> int:
    added = 0
    touched: dict[str, int] = {}
    weights = [weight for _, weight in bucket.minutes]
    for variation, total in counts.by_variation().items():
        member = f"{bucket.app}{SEP}{variation.kind}:{variation.name}"
        for (minute, _), share in zip(bucket.minutes, apportion(total, weights), strict=True):
            if share:
                key = keys.evaluations(bucket.environment, flag, minute)
                pipe.hincrby(key, member, share)
                touched[key] = minute
                added += share
    for key, minute in touched.items():
        pipe.expireat(key, _expiry_s(minute, bucket.retention_s))
    if added:
        apps = keys.evaluation_apps(bucket.environment, flag)
        pipe.sadd(apps, bucket.app)
        pipe.expire(apps, bucket.retention_s)
        # which minutes have counts, so reads skip windows that have none
        index = keys.evaluation_minutes(bucket.environment, flag)
        pipe.zadd(index, {str(minute): minute for minute in touched.values()})
        pipe.zremrangebyscore(index, "-inf", f"({bucket.expired}")
        pipe.expire(index, bucket.retention_s + 120)
    return added


def _expiry_s(minute: int, retention_s: int) -> int:
    return (minute + 1) * MINUTE_MS // 1000 + retention_s


def spread(start_ms: int, stop_ms: int) -> list[tuple[int, int]]:
    """The minutes `start_ms`..`stop_ms` overlaps, each with its overlap in ms (weight)."""
    if stop_ms <= start_ms:
        return [(start_ms // MINUTE_MS, 1)]
    first, last = start_ms // MINUTE_MS, (stop_ms - 1) // MINUTE_MS
    return [
        (m, min(stop_ms, (m + 1) * MINUTE_MS) - max(start_ms, m * MINUTE_MS))
        for m in range(first, last + 1)
    ]


def apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` into whole parts proportional to `weights` (largest remainder)."""
    whole = sum(weights)
    exact = [total * w for w in weights]
    parts = [e // whole for e in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] % whole), i))
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def evaluated_flags(client: Redis, *, environment: str, apps: Sequence[str] | None) -> set[str]:
    """Flags evaluated in `environment` (by any of `apps`, or by anyone when None)."""
    names = (
        [keys.evaluated_flags(environment)]
        if apps is None
        else [keys.app_evaluated_flags(environment, app) for app in apps]
    )
    with translate_errors():
        found: set[str] = client.sunion(names)  # type: ignore[assignment]
    return found


def apps_by_flag(client: Redis, *, environment: str, flags: Iterable[str]) -> dict[str, set[str]]:
    """The apps that evaluated each flag in `environment` (empty when none)."""
    names = list(flags)
    with translate_errors():
        pipe = client.pipeline(transaction=False)
        for flag in names:
            pipe.smembers(keys.evaluation_apps(environment, flag))
        found: list[set[str]] = pipe.execute()
    return dict(zip(names, found, strict=True))
