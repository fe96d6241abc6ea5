"""Unleash client metrics (`POST /api/client/metrics`): the evaluation counts behind impact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from relay.api.deps import IngestDep, SettingsDep, StoreDep
from relay.api.schemas import AUTH_ERRORS, error_responses
from relay.clock import now_ms
from relay.ingest.unleash_event import MAX_CLOCK_SKEW
from relay.store.evaluations import MAX_BUCKET_MINUTES, MINUTE_MS, ToggleCounts, record_evaluations

router = APIRouter(tags=["client metrics"], responses=AUTH_ERRORS)

Count = Annotated[StrictInt, Field(ge=0)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=255)]
MAX_TOGGLES = 10_000


class ToggleMetrics(BaseModel):
    """One toggle's counts: `yes`/`no` evaluations, and per variant when it has variants."""

    model_config = ConfigDict(extra="ignore")

    yes: Count
    no: Count
    variants: dict[Name, Count] = Field(default_factory=dict)


class MetricsBucket(BaseModel):
    model_config = ConfigDict(extra="ignore")

    start: datetime
    stop: datetime
    toggles: dict[Name, ToggleMetrics] = Field(max_length=MAX_TOGGLES)

    @model_validator(mode="after")
    def _ordered(self) -> MetricsBucket:
        if _ms(self.stop) < _ms(self.start):
            raise ValueError("stop is before start")
        if _ms(self.stop) - _ms(self.start) > MAX_BUCKET_MINUTES * MINUTE_MS:
            raise ValueError(f"a bucket spans at most {MAX_BUCKET_MINUTES} minutes")
        # the same window as an event's createdAt: anything else would escape retention
        if _ms(self.start) < 0:
            raise ValueError("start must not be before 1970-01-01T00:00:00Z")
        if _ms(self.stop) > now_ms() + MAX_CLOCK_SKEW / timedelta(milliseconds=1):
            raise ValueError(f"stop is more than {MAX_CLOCK_SKEW} ahead of the relay's clock")
        return self


class ClientMetrics(BaseModel):
    """Unleash's client-metrics body, as its SDKs send it (other fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    appName: Name
    instanceId: StrictStr | None = None
    environment: Name = "default"
    bucket: MetricsBucket


class MetricsAccepted(BaseModel):
    """How many evaluations were kept (those older than the retention are not)."""

    evaluations: int


@router.post(
    "/api/client/metrics",
    status_code=202,
    response_model=MetricsAccepted,
    responses=error_responses(413),
)
def post_client_metrics(
    body: ClientMetrics, client: StoreDep, settings: SettingsDep, _: IngestDep
) -> MetricsAccepted:
    """Record a client-metrics bucket: evaluations per flag, environment, app and minute."""
    kept = record_evaluations(
        client,
        environment=body.environment,
        app=body.appName,
        start_ms=_ms(body.bucket.start),
        stop_ms=_ms(body.bucket.stop),
        toggles={
            name: ToggleCounts(yes=t.yes, no=t.no, variants=t.variants)
            for name, t in body.bucket.toggles.items()
        },
        retention_s=int(settings.retention_days * 86_400),
        now_ms=now_ms(),
    )
    return MetricsAccepted(evaluations=kept)


def _ms(moment: datetime) -> int:
    """Epoch ms; a time without an offset is UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)
