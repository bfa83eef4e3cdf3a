"""A worker for tests: the production settings plus one slow job (never in production code).

``python -m arq tests.support.slow_worker.WorkerSettings``

``slow_metric`` records one metric like ``record_metric`` but holds its transaction open
for ``seconds`` first (``later_seconds`` on later tries), with arq's default 300 s
timeout, so a test can kill, stop or outlast a job that is really in the middle of its
work. Every start is logged to a Redis list for the test to read.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from arq.worker import func
from pydantic import BaseModel

from domain import schemas, services
from domain.uow import UnitOfWork
from worker.config import Settings
from worker.jobs import Job
from worker.logs import configure_logging
from worker.main import build_worker_settings
from worker.runner import run_job

NAME = "slow_metric"
STARTS_KEY = "test:slow:starts"
SLOW_TIMEOUT_S = 300


async def slow_metric(ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    tries = int(ctx["job_try"])
    await ctx["redis"].rpush(STARTS_KEY, f"{ctx['job_id']}|{os.getpid()}|{tries}")
    metric = {k: v for k, v in payload.items() if k not in {"seconds", "later_seconds"}}
    delay = float(payload["seconds"] if tries == 1 else payload.get("later_seconds", 0))

    async def record_slowly(uow: UnitOfWork, point: schemas.RecordMetric) -> BaseModel:
        await uow.runs.exists(point.run_id)  # the transaction is open from here on
        await asyncio.sleep(delay)
        return await services.record_metric(uow, point)

    return await run_job(ctx, Job(NAME, schemas.RecordMetric, use_case=record_slowly), (metric,))


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        configure_logging()
        settings = build_worker_settings(Settings())
        slow = func(slow_metric, name=NAME, timeout=SLOW_TIMEOUT_S)
        return {**settings, "functions": [*settings["functions"], slow]}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
