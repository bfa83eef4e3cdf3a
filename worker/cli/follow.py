"""Following jobs: their state from Redis while arq knows them, else from the history,
polled until they end; a generation followed chunk by chunk behind a progress bar.

One vocabulary for every command: queued, deferred, in_progress, succeeded, failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from worker.cli import output
from worker.cli.output import EXIT_TIMEOUT, CliError, note
from worker.jobs import GENERATE_CHUNK

if TYPE_CHECKING:
    from arq.jobs import JobResult
    from rich.progress import Progress, TaskID

    from domain.views import GenerationStatus
    from worker.cli.connect import Backends

FINAL = frozenset({"succeeded", "failed"})
FIRST_POLL = 0.02
SLOWEST_POLL = 0.25
NO_WORKER_HINT_AFTER = 5.0
GENERATION_POLL_SECONDS = 0.2
STALL_SECONDS = 10.0


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


class Bar:
    """A Rich progress bar on stderr, or nothing at all (``--json``)."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        if progress is not None:
            self._task = progress.add_task("planning the generation", total=None)

    def plan(self, total: int, generation_id: int) -> None:
        if self._progress is not None and self._task is not None:
            description = f"generation {generation_id}"
            self._progress.update(self._task, total=total, description=description)

    def advance_to(self, rows: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=rows)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Bar]:
    if not enabled:
        yield Bar(None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        SpinnerColumn(),
        output.description_column(),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=output.stderr()) as progress:
        yield Bar(progress)


async def follow_generation(
    backends: Backends, generation_id: int, deadline: float | None, bar: Bar
) -> GenerationStatus:
    """Poll the database until every chunk has committed; say so when one failed for good."""
    from domain.services import generation_status

    last_rows, last_change = -1, time.monotonic()
    while True:
        async with backends.unit_of_work() as uow:
            status = await generation_status(uow, generation_id)
        bar.advance_to(status.rows_done)
        if status.done:
            return status
        now = time.monotonic()
        if status.rows_done != last_rows:
            last_rows, last_change = status.rows_done, now
        elif now - last_change > STALL_SECONDS:
            await refuse_failed_chunks(backends, generation_id)
            last_change = now
        if deadline is not None and now >= deadline:
            raise CliError(
                f"gave up waiting: generation {generation_id} has {status.rows_done:,} of "
                f"{status.total:,} profiles; it goes on",
                EXIT_TIMEOUT,
            )
        await asyncio.sleep(GENERATION_POLL_SECONDS)


async def refuse_failed_chunks(backends: Backends, generation_id: int) -> None:
    """A chunk that failed for good never commits: say so instead of waiting forever."""
    async with backends.unit_of_work() as uow:
        failed = [
            (record.job_id, record.error_type, record.error_message)
            for record in await uow.jobs.list_failed(limit=100)
            if record.function == GENERATE_CHUNK.name
            and (record.payload or {}).get("generation_id") == generation_id
        ]
    if failed:
        job_id, kind, message = failed[0]
        raise CliError(
            f"generation {generation_id} cannot finish: {len(failed)} chunk job(s) failed; "
            f"first, {job_id}: {kind}: {message} (see `jobs failed`, `jobs retry {job_id}`)"
        )
