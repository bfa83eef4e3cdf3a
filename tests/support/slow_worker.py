"""A worker for tests: the production settings plus one slow job (never in production code).

``python -m arq tests.support.slow_worker.WorkerSettings`` (arq's own ``Worker``), or
``...ClaimingWorkerSettings`` (the production worker's class).

``slow_metric`` records one metric like ``record_metric`` but holds its transaction open
for ``seconds`` first (``later_seconds`` on later tries), with a 300 s timeout, so a
test can kill, stop, cancel or outlast a job that is really in the middle of its
work. Every start is logged to a Redis list for the test to read.

``...OftenDrainingSettings`` is the production worker whose history outbox is drained
every ``QUICK_DRAIN_S`` instead of every ``DRAIN_EVERY_SECONDS``, for a test that waits
for a drain.

``timed_metric`` is ``slow_metric`` with a
timeout of ``TIMED_TIMEOUT_S``: a try that sleeps longer times out inside its transaction.

``flaky_metric`` records a metric, but its first try hits a transient fault (a connection
reset), so it is retried once. ``block_loop`` blocks the worker's event loop for
``seconds``, as a job that calls blocking code would: the worker is stuck meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from typing import Any

from arq.worker import func
from pydantic import BaseModel

from domain import schemas, services
from domain.uow import UnitOfWork
from worker.bootstrap import services_of
from worker.main import DRAINER_KEY, build_worker_settings, on_startup, prepare_worker
from worker.registry import Job
from worker.runtime.claiming import use_claiming_worker
from worker.runtime.delivery import run_job
from worker.runtime.endings import arq_timeout, deliver
from worker.runtime.logs import configure_logging
from worker.runtime.outbox import OutboxDrainer
from worker.runtime.prometheus import job_meter
from worker.settings import Settings

NAME = "slow_metric"
FLAKY = "flaky_metric"
BLOCK = "block_loop"
STARTS_KEY = "test:slow:starts"
TIMED = "timed_metric"
SLOW_TIMEOUT_S = 300
TIMED_TIMEOUT_S = 2
QUICK_DRAIN_S = 0.5


async def _slowly(
    ctx: dict[str, Any], payload: dict[str, Any]
) -> tuple[dict[str, Any], services.UseCase[schemas.RecordMetric]]:
    tries = int(ctx["job_try"])
    await ctx["redis"].rpush(STARTS_KEY, f"{ctx['job_id']}|{os.getpid()}|{tries}")
    metric = {k: v for k, v in payload.items() if k not in {"seconds", "later_seconds"}}
    delay = float(payload["seconds"] if tries == 1 else payload.get("later_seconds", 0))

    async def record_slowly(uow: UnitOfWork, point: schemas.RecordMetric) -> BaseModel:
        await uow.runs.exists(point.run_id)  # the transaction is open from here on
        await asyncio.sleep(delay)
        return await services.record_metric(uow, point)

    return metric, record_slowly


SLOW_JOB = Job(NAME, schemas.RecordMetric, timeout=SLOW_TIMEOUT_S)
TIMED_JOB = Job(TIMED, schemas.RecordMetric, timeout=TIMED_TIMEOUT_S)


async def slow_metric(ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    metric, record_slowly = await _slowly(ctx, payload)
    return await deliver(ctx, replace(SLOW_JOB, use_case=record_slowly), (metric,))


async def timed_metric(ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    metric, record_slowly = await _slowly(ctx, payload)
    return await deliver(ctx, replace(TIMED_JOB, use_case=record_slowly), (metric,))


FLAKY_METER = job_meter(FLAKY)


async def flaky_metric(ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    async def record_after_a_fault(uow: UnitOfWork, point: schemas.RecordMetric) -> BaseModel:
        if ctx["job_try"] == 1:
            raise ConnectionResetError("the test's fault on the first try")
        return await services.record_metric(uow, point)

    job = Job(FLAKY, schemas.RecordMetric, use_case=record_after_a_fault)
    return await FLAKY_METER.measure(run_job(ctx, job, (payload,)))


async def block_loop(ctx: dict[str, Any], seconds: float) -> None:
    await ctx["redis"].rpush(STARTS_KEY, f"{ctx['job_id']}|{os.getpid()}|{ctx['job_try']}")
    time.sleep(seconds)  # noqa: ASYNC251 (the point: the loop is stuck meanwhile)


async def _draining_often(ctx: dict[str, Any]) -> None:
    """The production start, its outbox drainer replaced by one ticking every QUICK_DRAIN_S."""
    await on_startup(ctx)
    await ctx[DRAINER_KEY].stop()
    drainer = OutboxDrainer(services_of(ctx), every=QUICK_DRAIN_S)
    drainer.start()
    ctx[DRAINER_KEY] = drainer


def __getattr__(name: str) -> Any:
    if name == "OftenDrainingSettings":  # the production worker, as worker.main builds it
        return {**prepare_worker(Settings()), "on_startup": _draining_often}
    if name == "ClaimingWorkerSettings":  # the production worker's class, ClaimingWorker
        use_claiming_worker()
        return __getattr__("WorkerSettings")
    if name == "WorkerSettings":  # arq's own Worker, claiming as arq does
        configure_logging()
        settings = build_worker_settings(Settings())
        extra = [
            func(slow_metric, name=NAME, timeout=arq_timeout(SLOW_JOB)),
            func(timed_metric, name=TIMED, timeout=arq_timeout(TIMED_JOB)),
            func(flaky_metric, name=FLAKY),
            func(block_loop, name=BLOCK, max_tries=1),
        ]
        return {**settings, "functions": [*settings["functions"], *extra]}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
