"""A job's state as the CLI reports it: from Redis while arq knows the job, else from history.

One vocabulary for every command: queued, deferred, in_progress, succeeded, failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from worker.cli.output import EXIT_TIMEOUT, CliError, note

if TYPE_CHECKING:
    from arq.jobs import JobResult

    from worker.cli.connect import Backends

FINAL = frozenset({"succeeded", "failed"})
FIRST_POLL = 0.02
SLOWEST_POLL = 0.25
NO_WORKER_HINT_AFTER = 5.0


@dataclass(frozen=True)
class Outcome:
    job_id: str
    status: str
    function: str | None = None
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    source: str = "redis"
    tries: int | None = None
    finished_at: str | None = None

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def error(self) -> dict[str, str | None] | None:
        if self.status != "failed":
            return None
        return {"type": self.error_type, "message": self.error_message}

    def described_error(self) -> str:
        return f"{self.error_type}: {self.error_message}"

    def with_result(self, result: Any) -> Outcome:
        return replace(self, result=result)


def from_result(job_id: str, info: JobResult) -> Outcome:
    from worker.serialization import JobError

    finished_at = info.finish_time.isoformat()
    if info.success:
        return Outcome(
            job_id,
            "succeeded",
            info.function,
            info.result,
            tries=info.job_try,
            finished_at=finished_at,
        )
    problem = info.result
    if isinstance(problem, JobError):
        kind, message = problem.type_name, problem.message
    else:
        kind, message = type(problem).__name__, str(problem)
    return Outcome(
        job_id,
        "failed",
        info.function,
        error_type=kind,
        error_message=message,
        tries=info.job_try,
        finished_at=finished_at,
    )


async def current_outcome(
    backends: Backends, job_id: str, *, describe: bool = False
) -> Outcome | None:
    """Where the job stands now; None when neither Redis nor the job history knows it.

    ``describe`` also reads the function name of a job still waiting (one more round trip).
    """
    from arq.jobs import JobStatus

    job = await backends.job(job_id)
    for _ in range(2):  # a job may finish between the two reads: then read its result
        info = await job.result_info()
        if info is not None:
            return from_result(job_id, info)
        status = await job.status()
        if status is not JobStatus.complete:
            break
    if status is JobStatus.not_found:
        return await from_history(backends, job_id)
    function = None
    if describe:
        definition = await job.info()
        function = definition.function if definition else None
    return Outcome(job_id, status.value, function)


async def from_history(backends: Backends, job_id: str) -> Outcome | None:
    """The durable record in job_records, kept long after Redis forgets the job."""
    async with backends.unit_of_work() as uow:
        record = await uow.jobs.get(job_id)
        if record is None:
            return None
        return Outcome(
            job_id,
            record.status,
            record.function,
            error_type=record.error_type,
            error_message=record.error_message,
            source="history",
            tries=record.tries,
            finished_at=record.finished_at.isoformat(),
        )


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


async def await_outcome(backends: Backends, job_id: str, deadline: float | None) -> Outcome:
    """Poll until the job succeeds or fails; Ctrl-C or the deadline stop the wait, not the job."""
    started = time.monotonic()
    delay = FIRST_POLL
    hinted = False
    try:
        while True:
            outcome = await current_outcome(backends, job_id)
            if outcome is None:
                raise CliError(f"job {job_id} is unknown: not in Redis, not in the job history")
            if outcome.done:
                return outcome
            check_deadline(deadline, f"job {job_id} is still {outcome.status}", job_id)
            if not hinted and time.monotonic() - started > NO_WORKER_HINT_AFTER:
                hinted = True
                await hint_if_no_worker(backends)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, SLOWEST_POLL)
    except asyncio.CancelledError:
        note(f"stopped waiting; job {job_id} goes on (see `jobs status {job_id}`)")
        raise


async def await_many(
    backends: Backends, job_ids: Sequence[str], deadline: float | None
) -> list[Outcome]:
    """Wait for many jobs, reading all their results in one round trip per poll."""
    outcomes: dict[str, Outcome] = {}
    delay = FIRST_POLL
    while len(outcomes) < len(job_ids):
        pending = [job_id for job_id in job_ids if job_id not in outcomes]
        outcomes.update(await _read_results(backends, pending))
        if len(outcomes) == len(job_ids):
            break
        waiting = len(job_ids) - len(outcomes)
        check_deadline(deadline, f"{waiting} of {len(job_ids)} jobs not finished", job_ids[0])
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, SLOWEST_POLL)
    return [outcomes[job_id] for job_id in job_ids]


async def _read_results(backends: Backends, job_ids: list[str]) -> dict[str, Outcome]:
    from arq.constants import result_key_prefix

    from worker.cli.connect import job_result

    queue = await backends.queue()
    async with queue.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.get(result_key_prefix + job_id)
            pipe.zscore(backends.settings.queue_name, job_id)
        replies = await pipe.execute()
    found: dict[str, Outcome] = {}
    for index, job_id in enumerate(job_ids):
        raw, score = replies[2 * index], replies[2 * index + 1]
        if raw:
            found[job_id] = from_result(job_id, job_result(job_id, raw))
        elif score is None:  # neither queued nor finished in Redis: ask the history
            outcome = await current_outcome(backends, job_id)
            if outcome is None:
                raise CliError(f"job {job_id} is unknown: not in Redis, not in the job history")
            if outcome.done:
                found[job_id] = outcome
    return found


def check_deadline(deadline: float | None, state: str, job_id: str) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise CliError(
            f"gave up waiting: {state}; it goes on (see `jobs status {job_id}`)", EXIT_TIMEOUT
        )


async def hint_if_no_worker(backends: Backends) -> None:
    from arq.constants import health_check_key_suffix

    queue = await backends.queue()
    if not await queue.exists(backends.settings.queue_name + health_check_key_suffix):
        note("still waiting, and no worker seems to be running: start one with `jobs worker`")
