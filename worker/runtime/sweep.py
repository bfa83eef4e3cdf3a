"""The sweep: what a dead process left open in the job history is closed.

The history says ``retrying`` from the moment a try fails until the next one ends. A job
that is then in no queue, held by no worker, and has no result, will never run again: its
worker died before its end could be written (or before arq's failure of it could be), or
Redis lost it. Once a minute one worker (a turn taken with ``SET NX``) reads the jobs left
retrying for more than ``SWEEP_IDLE_SECONDS``, asks Redis for each, and closes the ones no
one holds as failed: with arq's own error when arq kept a failed result, else as lost.
Each close is conditional (still retrying, its last try still the one read), so that two
sweeps, or a try ending meanwhile, never close a job twice or wrongly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix

from domain.services import LostJob, close_lost_jobs, open_retries
from worker.bootstrap import Services
from worker.runtime.prometheus import HISTORY_SWEPT
from worker.runtime.tasks import Periodic
from worker.serialization import JobError, deserialize

log = logging.getLogger("worker.history")

SWEEP_EVERY_SECONDS = 60.0
SWEEP_IDLE_SECONDS = 60.0  # a try's end written moments before its job leaves the queue
SWEEP_LIMIT = 500  # jobs looked at per sweep; the next sweep goes on
SWEEP_TURN_KEY = "dbjobs:history:sweeper"
LOST, ARQ_FAILED = "lost", "arq_failed"
LOST_ERROR = "JobLost"
LOST_MESSAGE = (
    "in no queue, held by no worker, and with no result: its worker died before its end "
    "was written, or Redis lost it (closed by the sweep)"
)


@dataclass
class Swept:
    """What one sweep looked at and closed, by what it found in Redis."""

    looked_at: int = 0
    closed: dict[str, list[str]] = field(default_factory=lambda: {LOST: [], ARQ_FAILED: []})

    @property
    def count(self) -> int:
        return sum(len(ids) for ids in self.closed.values())


async def sweep_lost_jobs(
    services: Services, *, idle_seconds: float = SWEEP_IDLE_SECONDS, limit: int = SWEEP_LIMIT
) -> Swept:
    async with services.unit_of_work() as uow:
        candidates = await open_retries(uow, idle_seconds=idle_seconds, limit=limit)
    swept = Swept(looked_at=len(candidates))
    if not candidates:
        return swept
    lost = await _not_in_redis(services, candidates)
    async with services.unit_of_work() as uow:
        closed = set(await close_lost_jobs(uow, [job for job, _ in lost]))
    for job, found in lost:
        if job.job_id in closed:
            swept.closed[found].append(job.job_id)
    for found, ids in swept.closed.items():
        HISTORY_SWEPT.labels(found).inc(len(ids))
    if swept.count:
        log.warning("the sweep closed %d job(s) left retrying: %s lost, %s failed by arq: %s",
                    swept.count, len(swept.closed[LOST]), len(swept.closed[ARQ_FAILED]),
                    ", ".join(sorted(closed))[:500])  # fmt: skip
    return swept


async def _not_in_redis(
    services: Services, candidates: list[tuple[str, datetime]]
) -> list[tuple[LostJob, str]]:
    """The candidates no queue holds and no worker runs, each with what Redis had of it."""
    queue = services.settings.queue_name
    async with services.redis.pipeline(transaction=True) as pipe:  # one moment for all
        for job_id, _ in candidates:
            pipe.zscore(queue, job_id)
            pipe.exists(in_progress_key_prefix + job_id, job_key_prefix + job_id)
            pipe.get(result_key_prefix + job_id)
        replies = await pipe.execute()
    lost = []
    for (job_id, ended), at in zip(candidates, range(0, len(replies), 3), strict=True):
        score, held, result = replies[at : at + 3]
        if score is not None or held:
            continue
        closed = _closed_by(job_id, ended, result)
        if closed is not None:
            lost.append(closed)
    return lost


def _closed_by(job_id: str, ended: datetime, result: bytes | None) -> tuple[LostJob, str] | None:
    if result is None:
        return LostJob(job_id, ended, LOST_ERROR, LOST_MESSAGE), LOST
    try:
        error = deserialize(result).get("r")
    except ValueError:
        error = JobError("UnreadableResult", "arq's result for it could not be read")
    if not isinstance(error, JobError):  # it succeeded: its success is the history's to say
        return None
    message = f"{error.message} (closed by the sweep from arq's result)"
    return LostJob(job_id, ended, error.type_name, message), ARQ_FAILED


class LostJobSweeper(Periodic):
    """A worker's background task: a sweep every ``every`` seconds, when its turn."""

    waiting = "the sweep waits"

    def __init__(self, services: Services, every: float = SWEEP_EVERY_SECONDS) -> None:
        super().__init__(every)
        self.services = services

    async def tick(self) -> None:
        await self.sweep_in_turn()

    async def sweep_in_turn(self) -> Swept | None:
        """A sweep, unless another worker swept within the period (then None)."""
        redis, turn_ms = self.services.redis, int(self.every * 1000)
        if not await redis.set(SWEEP_TURN_KEY, self.services.worker_id, nx=True, px=turn_ms):
            return None
        return await sweep_lost_jobs(self.services)
