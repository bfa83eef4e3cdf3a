"""What an idle worker costs: resident memory and CPU while it only polls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bench.context import Bench
from bench.cpu import process_cpu_seconds
from bench.processes import WORKER_SETTINGS, running_workers, status_kb
from bench.services import reset_redis

SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class Idle:
    rss_mb: float
    cpu_percent: float


async def idle_worker(bench: Bench) -> list[Idle]:
    samples = []
    await reset_redis(bench.services)
    for _ in range(bench.runs):
        with running_workers(bench.env(), 1, WORKER_SETTINGS) as (worker,):
            await asyncio.sleep(SETTLE_SECONDS)
            before = process_cpu_seconds(worker.pid)
            await asyncio.sleep(bench.sizes.idle_seconds)
            used = process_cpu_seconds(worker.pid) - before
            rss = status_kb(worker, "VmRSS") / 1024
        samples.append(Idle(rss_mb=rss, cpu_percent=100 * used / bench.sizes.idle_seconds))
    return samples
