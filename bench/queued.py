"""Workloads through the queue: real worker processes, timed from enqueue to last commit."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench import cpu
from bench.context import Bench
from bench.cpu import CpuUse
from bench.measure import rate, wait_drained
from bench.noop import NOOP
from bench.processes import (
    NOOP_SETTINGS,
    WORKER_SETTINGS,
    WorkerProcess,
    running_workers,
    status_kb,
)
from bench.services import reset_redis, truncate_tables
from worker.ops.enqueue import enqueue_many

DRAIN_TIMEOUT = 600
# Cron jobs (fail_stale_runs every minute) add ledger rows of their own.
RECORDED_METRIC_JOBS = "WHERE function = 'record_metric' AND status = 'succeeded'"


@dataclass(frozen=True)
class QueueRun:
    """One run: work units per second, and the CPU the worker, PostgreSQL and Redis used."""

    per_second: float
    cpu: CpuUse
    jobs: int

    @property
    def cpu_ms_per_job(self) -> float:
        return 1000 * self.cpu.workers / self.jobs


def metric_payloads(run_id: int, count: int) -> list[dict[str, Any]]:
    return [
        {"run_id": run_id, "name": "loss", "step": step, "value": 1.0 / (step + 1)}
        for step in range(count)
    ]


def batch_payloads(run_id: int, batches: int, points: int) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "points": [
                {"name": "loss", "step": b * points + i, "value": 0.5 + i * 1e-6}
                for i in range(points)
            ],
        }
        for b in range(batches)
    ]


async def timed_jobs(bench: Bench, function: str, payloads: Sequence[dict[str, Any]]) -> float:
    """Seconds from the first enqueue until every job has finished."""
    started = time.perf_counter()
    await enqueue_many(bench.pool, function, payloads)
    return await wait_drained(bench.pool, bench.queue, within=DRAIN_TIMEOUT, started=started)


async def measured(
    bench: Bench,
    workers: Sequence[WorkerProcess],
    function: str,
    payloads: Sequence[dict[str, Any]],
    units: int,
) -> QueueRun:
    before = await cpu.sample(bench, workers)
    seconds = await timed_jobs(bench, function, payloads)
    used = (await cpu.sample(bench, workers)).minus(before)
    return QueueRun(rate(units, seconds), used, len(payloads))


async def scalar(bench: Bench, sql: str) -> int:
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        return int(await connection.fetchval(sql))
    finally:
        await connection.close()


async def expect_rows(bench: Bench, table: str, expected: int, where: str = "") -> None:
    """Every job must have committed its effect: a throughput of failures is no throughput."""
    found = await scalar(bench, f"SELECT count(*) FROM {table} {where}")
    if found != expected:
        raise RuntimeError(f"{table}: {found} rows, expected {expected} {where}")


async def noop_runs(bench: Bench) -> list[QueueRun]:
    count = bench.sizes.noop_jobs
    await reset_redis(bench.services)
    with running_workers(bench.env(), 1, NOOP_SETTINGS) as workers:
        return [
            await measured(bench, workers, NOOP, [{}] * count, count) for _ in range(bench.runs)
        ]


async def record_metric_run(bench: Bench, workers: int = 1) -> QueueRun:
    """One run of record_metric jobs on emptied tables, ``workers`` fresh worker processes."""
    count = bench.sizes.metric_jobs
    await truncate_tables(bench.services)
    await reset_redis(bench.services)
    run_id = await bench.new_run()
    with running_workers(bench.env(), workers, WORKER_SETTINGS) as processes:
        result = await measured(
            bench, processes, "record_metric", metric_payloads(run_id, count), count
        )
    await expect_rows(bench, "metrics", count)
    await expect_rows(bench, "job_records", count, RECORDED_METRIC_JOBS)
    return result


@dataclass(frozen=True)
class PairedRuns:
    """Job path runs, each beside a raw COPY of the same rows run just before it."""

    jobs: list[QueueRun]
    copies: list[QueueRun]

    @property
    def ratios(self) -> list[float]:
        return [j.per_second / c.per_second for j, c in zip(self.jobs, self.copies, strict=True)]


async def record_metrics_runs(bench: Bench) -> PairedRuns:
    """Batches of ``batch_points`` points: points/s from the first enqueue to the last commit,
    each run paired with a raw COPY of the same rows (the machine's mood, shared)."""
    from bench.raw import copy_payloads

    sizes = bench.sizes
    points = sizes.metric_batches * sizes.batch_points
    paired = PairedRuns([], [])
    await reset_redis(bench.services)
    with running_workers(bench.env(), 1, WORKER_SETTINGS) as workers:
        for _ in range(bench.runs):
            await truncate_tables(bench.services)
            run_id = await bench.new_run()
            payloads = batch_payloads(run_id, sizes.metric_batches, sizes.batch_points)
            per_second, used = await copy_payloads(bench, payloads)
            paired.copies.append(QueueRun(per_second, used, sizes.metric_batches))
            await truncate_tables(bench.services)
            run_id = await bench.new_run()
            payloads = batch_payloads(run_id, sizes.metric_batches, sizes.batch_points)
            paired.jobs.append(await measured(bench, workers, "record_metrics", payloads, points))
            await expect_rows(bench, "metrics", points)
    return paired


@dataclass(frozen=True)
class GenerationRun:
    seconds: float
    peak_rss_mb: float
    cpu: CpuUse


async def generate_profiles_runs(bench: Bench) -> list[GenerationRun]:
    """Seconds from enqueue to the last chunk's commit, and the worker's peak RSS (VmHWM).

    A fresh worker per run, so each peak belongs to that run alone.
    """
    count = bench.sizes.profiles
    runs = []
    for seed in range(bench.runs):
        await truncate_tables(bench.services)
        await reset_redis(bench.services)
        with running_workers(bench.env(), 1, WORKER_SETTINGS) as workers:
            payload = {"count": count, "seed": seed}
            before = await cpu.sample(bench, workers)
            seconds = await timed_jobs(bench, "generate_profiles", [payload])
            used = (await cpu.sample(bench, workers)).minus(before)
            peak = status_kb(workers[0], "VmHWM") / 1024
        await expect_rows(bench, "profiles", count)
        runs.append(GenerationRun(seconds, peak, used))
    return runs
