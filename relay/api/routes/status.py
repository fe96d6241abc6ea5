"""The relay's health at a glance: what `relay status --json` shows, for the caller's role."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from relay.api.deps import ReaderDep, SettingsDep, StoreDep
from relay.api.schemas import AUTH_ERRORS
from relay.observability.status import as_json, gather
from relay.store import subscriptions
from relay.store.subscriptions import SubscriptionRecord
from relay.store.tokens import Capability, TokenInfo
from relay.subscriptions.config import INTEGRATION_KEY
from relay.subscriptions.redaction import redactor_for
from relay.subscriptions.views import origin_url, shown_config

router = APIRouter(prefix="/api/v2/status", tags=["status"], responses=AUTH_ERRORS)

# characters of a receiver's last answer shown per subscription (its status keeps 4 KiB):
# a table's excerpt, and 1,000 failing subscriptions answer 0.5 MB, not 2.5 MB
ERROR_TEXT: Final = 300


class QueueDepthsRep(BaseModel):
    """How many entries each queue holds."""

    outbox: int
    due: int
    ready: int
    claims: int
    dead: int
    waiting: int


class WorkerRep(BaseModel):
    name: str
    lastSeen: int
    alive: bool


class SubscriptionHealthRep(BaseModel):
    """One subscription's delivery health and flow; times in ms since the epoch."""

    id: str
    integrationKey: str
    name: str
    on: bool
    url: str
    successCount: int
    errorCount: int
    lastSuccess: int | None
    lastError: int | None
    lastErrorText: str | None = Field(
        description=f"status code and the first {ERROR_TEXT} characters of the answer (writers)"
    )
    failingSince: int | None
    disabledReason: str | None
    dead: int
    circuit: str | None
    circuitRetryAt: int | None
    waiting: int
    pausedUntil: int | None
    pausedReason: str | None
    inFlight: int
    maxInFlight: int | None
    maxPerSecond: float | None
    throttled: bool
    heldKeys: int
    heldDeliveries: int


class ReplicaRep(BaseModel):
    address: str
    lagBytes: int


class RedisRep(BaseModel):
    role: str
    replicas: list[ReplicaRep]
    minReplicas: int


class StatusRep(BaseModel):
    """`relay status --json`, each subscription with its integration key, masked for readers."""

    at: int
    queues: QueueDepthsRep
    workers: list[WorkerRep]
    subscriptions: list[SubscriptionHealthRep]
    deadUnattributed: int
    redis: RedisRep


@router.get("", response_model=StatusRep)
def get_status(client: StoreDep, settings: SettingsDep, caller: ReaderDep) -> Response:
    """Queue depths, Redis replicas, workers and every subscription's delivery health."""
    records = subscriptions.list_subscriptions(client)
    document = as_json(gather(client, worker_ttl=settings.worker_heartbeat_ttl, records=records))
    by_id = {record.id: record for record in records}
    document["subscriptions"] = [
        _shown(entry, by_id[entry["id"]], caller) for entry in document["subscriptions"]
    ]
    # validated once and serialized by pydantic-core: FastAPI would validate the returned
    # model again (a third of the time with 1,000 subscriptions)
    shown = StatusRep.model_validate(document)
    return Response(shown.model_dump_json(), media_type="application/json")


def _shown(entry: dict[str, Any], record: SubscriptionRecord, caller: TokenInfo) -> dict[str, Any]:
    """A subscription's health as `caller` may see it, as the subscription's own answer
    shows it (relay/subscriptions/views.py): credentials masked in the URL and in the
    relay's words, the URL's origin only and no receiver text for readers."""
    trusted = caller.can(Capability.WRITE)
    url = shown_config(record).get("url")
    url = url if isinstance(url, str) else ""
    if not trusted and record.integration_key == INTEGRATION_KEY and url:
        url = origin_url(url)
    shown = {**entry, "integrationKey": record.integration_key, "url": url}
    text, reason = entry.get("lastErrorText"), entry.get("disabledReason")
    if not trusted:
        shown["lastErrorText"] = None
    # a redactor is built only for text to mask: building one costs more than the rest
    if (trusted and text) or reason:
        redact = redactor_for(record)
        # masked whole, then cut: a cut credential would escape the masking
        shown["lastErrorText"] = redact(text)[:ERROR_TEXT] if trusted and text else None
        shown["disabledReason"] = redact(reason) if reason else reason
    return shown
