"""Baseline for bench/delivery.py: the naive Celery webhook sender (one task, one POST).

Run by the benchmark as `celery -A naive_app worker` (default prefork pool, default
concurrency = the number of cores), on the broker in NAIVE_BROKER_URL.
"""

from __future__ import annotations

import os

import httpx
from celery import Celery

app = Celery("naive", broker=os.environ.get("NAIVE_BROKER_URL", "redis://127.0.0.1:6379/1"))
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)


@app.task(name="naive.post")  # type: ignore[untyped-decorator]
def post(url: str, body: str, headers: dict[str, str]) -> int:
    """POST one webhook, the way a first version usually does."""
    return httpx.post(url, content=body.encode(), headers=headers, timeout=15.0).status_code
