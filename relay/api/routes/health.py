"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from relay.api.deps import SettingsDep, StoreDep
from relay.errors import StoreError
from relay.store import heartbeats
from relay.store.client import Redis, replication, required_replicas, translate_errors

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    redis: bool
    workers: list[str]
    missing: list[str]
    # what does not stop the API from answering, but stops writes being acknowledged
    warnings: list[str] = []


# async: answered on the event loop, never waiting for a thread of the pool that the sync
# routes share (all of them may wait on a stalled Redis; tests/relay/api/test_redis_stall.py)
@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The API process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(client: StoreDep, settings: SettingsDep) -> JSONResponse:
    """Redis answers and a worker sent a heartbeat within 30 s. Too few replicas for
    RELAY_REDIS_MIN_REPLICAS is a warning, not unreadiness: reads still work, and a load
    balancer that took every API process out would turn the writes' 503s (which say to
    retry) into connection errors."""
    missing: list[str] = []
    warnings: list[str] = []
    workers: list[str] = []
    try:
        with translate_errors():
            client.ping()
        workers = sorted(
            heartbeats.workers_seen(client, within_seconds=settings.worker_heartbeat_ttl)
        )
        warnings = _replication_warnings(client)
    except StoreError as exc:
        missing.append(f"redis: {exc}")
    redis_ok = not missing
    if redis_ok and not workers:
        missing.append(f"worker: no heartbeat in the last {settings.worker_heartbeat_ttl:g}s")
    body = Readiness(
        status="ready" if not missing else "not ready",
        redis=redis_ok,
        workers=workers,
        missing=missing,
        warnings=warnings,
    )
    return JSONResponse(body.model_dump(), status_code=200 if not missing else 503)


def _replication_warnings(client: Redis) -> list[str]:
    if not required_replicas(client):
        return []
    state = replication(client)
    if not state.short:
        return []
    return [
        f"redis replicas: {len(state.replicas)} connected, {state.required} required "
        "(RELAY_REDIS_MIN_REPLICAS): ingest and subscription changes answer 503"
    ]
