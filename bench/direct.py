"""The baseline without the queue: the same job path, in-process."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

from bench import cpu
from bench.context import Bench
from bench.measure import rate
from bench.queued import RECORDED_METRIC_JOBS, QueueRun, expect_rows, metric_payloads
from bench.services import truncate_tables
from worker.bootstrap import SERVICES_KEY, Services
from worker.registry import RECORD_METRIC
from worker.runtime.delivery import run_job


async def run_direct(services: Services, payloads: list[dict[str, Any]], concurrency: int) -> float:
    """Run ``record_metric`` through ``run_job`` as a worker would, ``concurrency`` at
    a time, with no queue; seconds taken."""
    todo: Iterator[dict[str, Any]] = iter(payloads)

    async def lane() -> None:
        for payload in todo:
            ctx = {SERVICES_KEY: services, "job_id": os.urandom(16).hex(), "job_try": 1}
            await run_job(ctx, RECORD_METRIC, (payload,))

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started


async def direct_record_metric_run(bench: Bench) -> QueueRun:
    """One run without the queue: the worker's own ``Services`` (engine, pool, settings), the same
    validation, unit of work, ledger and concurrency, on a fresh engine as a fresh worker has."""
    settings = bench.settings
    count = bench.sizes.metric_jobs
    await truncate_tables(bench.services)
    run_id = await bench.new_run()
    services = Services.for_worker(settings, bench.pool)
    try:
        before = await cpu.sample(bench)
        seconds = await run_direct(services, metric_payloads(run_id, count), settings.max_jobs)
        used = (await cpu.sample(bench)).minus(before)
    finally:
        await services.close()
    await expect_rows(bench, "metrics", count)
    await expect_rows(bench, "job_records", count, RECORDED_METRIC_JOBS)
    return QueueRun(rate(count, seconds), used, count)
