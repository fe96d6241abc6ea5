"""Prometheus metrics (`GET /metrics`): this machine's processes, queue depths from Redis."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from relay.api.deps import ReaderDep, SettingsDep, StoreDep
from relay.api.schemas import AUTH_ERRORS
from relay.observability import metrics

router = APIRouter(tags=["operations"], responses=AUTH_ERRORS)

_TEXT = {
    "description": "Prometheus text exposition format 0.0.4",
    "content": {metrics.CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
}


@router.get("/metrics", response_class=Response, responses={200: _TEXT})
async def get_metrics(client: StoreDep, settings: SettingsDep, _: ReaderDep) -> Response:
    """Prometheus metrics; send a reader token as `Authorization: Bearer <token>`."""
    # reading metric files and Redis blocks: off the event loop
    body = await run_in_threadpool(metrics.render, client, worker_ttl=settings.worker_heartbeat_ttl)
    return Response(body, media_type=metrics.CONTENT_TYPE)
