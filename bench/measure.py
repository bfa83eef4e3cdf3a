"""Timing helpers and the shape of a result row."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from arq.connections import ArqRedis

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
    """Seconds from ``started`` until the queue is empty.

    arq removes a job from the queue in the same Redis transaction that stores its result,
    after the job's database commit: an empty queue means every job has committed.
    """
    deadline = started + within
    while await pool.zcard(queue):
        if time.perf_counter() > deadline:
            left = await pool.zcard(queue)
            raise TimeoutError(f"{left} jobs still queued after {within:.0f}s")
        await asyncio.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")
