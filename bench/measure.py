"""Timing helpers and the shape of a result row."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import asyncpg
from arq.connections import ArqRedis

from worker.lanes import lane_queues

POLL_SECONDS = 0.005


@dataclass
class Row:
    """One line of the table: a workload's per-run figures, its baseline and its target."""

    workload: str
    unit: str
    values: list[float] = field(default_factory=list)
    baseline: str = ""
    target: str = ""
    # Whether the median meets the target; None when there is no target.
    check: Callable[[float], bool] | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def verdict(self) -> str:
        if self.check is None or not self.values:
            return ""
        return "met" if self.check(self.median) else "MISSED"


async def wait_drained(pool: ArqRedis, queue: str, *, within: float, started: float) -> float:
    """Seconds from ``started`` until the queue, every lane of it, is empty.

    arq removes a job from the queue in the same Redis transaction that stores its result,
    after the job's database commit: an empty queue means every job has committed.
    """
    deadline = started + within
    while left := await queued(pool, queue):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{left} jobs still queued after {within:.0f}s")
        await asyncio.sleep(POLL_SECONDS)
    return time.perf_counter() - started


async def queued(pool: ArqRedis, queue: str) -> int:
    """Jobs waiting or running in every lane of ``queue`` (``worker.lanes``)."""
    async with pool.pipeline(transaction=False) as pipe:
        for lane in lane_queues(queue):
            pipe.zcard(lane)
        counts = await pipe.execute()
    return sum(int(count) for count in counts)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


async def start_waits(dsn: str, enqueued: Mapping[str, float]) -> list[float]:
    """Each job's enqueue (``enqueued``: epoch seconds, this process's clock) to its start
    (the job history's ``started_at``, the worker's clock: the same machine), in ms."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT job_id, started_at FROM job_records WHERE job_id = ANY($1::text[])",
            list(enqueued),
        )
    finally:
        await connection.close()
    starts = {row["job_id"]: row["started_at"] for row in rows}
    if missing := set(enqueued) - set(starts):
        raise RuntimeError(f"{len(missing)} jobs have no record")
    return [1000 * (starts[job_id].timestamp() - at) for job_id, at in enqueued.items()]
