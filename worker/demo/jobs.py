"""The demo's producer side: enqueue real jobs, wait for their results, keep the score."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis
from arq.jobs import Job
from rich.progress import Progress, TaskID

from worker.demo.setup import EXIT_TIMEOUT, DemoError, brief
from worker.serialization import JobError, deserialize
from worker.tasks import cancel_and_wait

RESULT_POLL_SECONDS = 0.02


@dataclass
class Tally:
    """How many jobs of each name ended how: succeeded, duplicate or failed."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, function: str, status: str) -> None:
        key = (function, status)
        self.counts[key] = self.counts.get(key, 0) + 1

    def rows(self) -> list[tuple[str, str, int]]:
        return [(function, status, n) for (function, status), n in self.counts.items()]


def status_of(result: Any) -> str:
    """A delivery the job ledger (or a chunk's own key) had already seen is a duplicate."""
    if isinstance(result, dict) and result.get("duplicate") is True:
        return "duplicate"
    return "succeeded"


class Jobs:
    """Jobs enqueued through arq's client, each awaited while watching the worker task."""

    def __init__(
        self, pool: ArqRedis, worker: asyncio.Task[None], *, timeout: float, tally: Tally
    ) -> None:
        self.pool = pool
        self.worker = worker
        self.timeout = timeout
        self.tally = tally

    async def enqueue(self, function: str, payload: dict[str, Any] | None = None) -> Job:
        args = () if payload is None else (payload,)
        job = await self.pool.enqueue_job(function, *args)
        if job is None:  # only a fixed job id can collide, and the demo uses none
            raise DemoError(f"{function} was not enqueued: a job with its id already exists")
        return job

    def existing(self, job_id: str) -> Job:
        """A job someone else enqueued (a fan-out's chunk), found by its id."""
        return Job(job_id, self.pool, self.pool.default_queue_name, deserialize)

    async def call(self, function: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.outcome(function, await self.enqueue(function, payload))

    async def outcome(self, function: str, job: Job) -> dict[str, Any]:
        """The job's result; a failure, a stopped worker or a timeout ends the demo."""
        waiting = asyncio.ensure_future(job.result(poll_delay=RESULT_POLL_SECONDS))
        try:
            done, _ = await asyncio.wait(
                {waiting, self.worker}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            await cancel_and_wait(waiting)  # stops the polling unless the result came
        if waiting not in done:
            raise self._not_finished(function, job)
        try:
            result = waiting.result()
        except JobError as error:
            self.tally.add(function, "failed")
            raise DemoError(f"job {function} failed: {error.type_name}: {error.message}") from None
        except Exception as error:
            self.tally.add(function, "failed")
            raise DemoError(f"job {function} failed: {brief(error)}") from error
        self.tally.add(function, status_of(result))
        return result if isinstance(result, dict) else {"result": result}

    def _not_finished(self, function: str, job: Job) -> DemoError:
        if self.worker.done():
            error = None if self.worker.cancelled() else self.worker.exception()
            reason = brief(error) if error is not None else "it stopped"
            return DemoError(f"the worker stopped before job {function} ended: {reason}")
        return DemoError(
            f"job {function} ({job.job_id}) did not finish within {self.timeout:g}s",
            EXIT_TIMEOUT,
        )


@dataclass
class Steps:
    """One progress line per step; each step's time goes to the summary."""

    progress: Progress
    timings: list[tuple[str, float]] = field(default_factory=list)

    def start(self, name: str, description: str, total: int = 1) -> Step:
        task = self.progress.add_task(description, total=total)
        return Step(self, name, task, total, time.perf_counter())


@dataclass
class Step:
    steps: Steps
    name: str
    task: TaskID
    total: int
    started: float

    def resize(self, total: int) -> None:
        self.total = total
        self.steps.progress.update(self.task, total=total)

    def advance(self, amount: int = 1) -> None:
        self.steps.progress.advance(self.task, amount)

    def done(self, summary: str) -> None:
        progress = self.steps.progress
        progress.update(self.task, description=f"[green]✓[/] {summary}", completed=self.total)
        progress.stop_task(self.task)
        self.steps.timings.append((self.name, time.perf_counter() - self.started))
