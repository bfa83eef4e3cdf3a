"""Following jobs: where a job stands, from Redis while arq knows it and from the history
after, polled until it ends, with its retries and its children's progress shown on the way.

One vocabulary for every command: queued, deferred, in_progress and retrying while a job
waits or runs; succeeded, failed or cancelled once it is done. A submission that became
several jobs (a file's batches, a generation's chunks) is followed through its children.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from worker.cli import output
from worker.cli.output import EXIT_TIMEOUT, CliError, note

if TYPE_CHECKING:
    from arq.jobs import JobResult
    from rich.progress import Progress, TaskID

    from domain.views import GenerationStatus, JobDetail, Submission
    from worker.cli.connect import Backends

FINAL = frozenset({"succeeded", "failed", "cancelled"})
FIRST_POLL = 0.02
SLOWEST_POLL = 0.25
NO_WORKER_HINT_AFTER = 5.0
GENERATION_POLL_SECONDS = 0.2
STALL_SECONDS = 10.0
SUBMISSION_PREFIX = "dbjobs:submission:"
COUNTED = ("received", "inserted", "duplicates")


@dataclass(frozen=True)
class Outcome:
    """Where a job (or a submission) stands, with what the CLI prints of it."""

    job_id: str
    status: str
    function: str | None = None
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    source: str = "redis"
    tries: int | None = None
    finished_at: str | None = None
    next_retry_at: str | None = None
    retryable: bool | None = None
    children: dict[str, Any] | None = field(default=None)

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def error(self) -> dict[str, str | None] | None:
        if self.error_type is None:
            return None
        return {"type": self.error_type, "message": self.error_message}

    def described_error(self) -> str:
        return f"{self.error_type}: {self.error_message}"

    def with_result(self, result: Any) -> Outcome:
        return replace(self, result=result)

    def as_json(self, *, with_result: bool = True) -> dict[str, Any]:
        """The same fields for every job, every command: one contract for scripts."""
        data: dict[str, Any] = {
            "job_id": self.job_id,
            "function": self.function,
            "status": self.status,
            "source": self.source,
            "tries": self.tries,
            "finished_at": self.finished_at,
            "next_retry_at": self.next_retry_at,
            "error": self.error,
            "children": self.children,
        }
        if with_result:
            data["result"] = self.result
        return data


def from_result(job_id: str, info: JobResult) -> Outcome:
    from worker.serialization import JobError

    base = Outcome(
        job_id,
        "succeeded" if info.success else "failed",
        info.function,
        tries=info.job_try,
        finished_at=info.finish_time.isoformat(),
    )
    if info.success:
        return base.with_result(info.result)
    problem = info.result
    if isinstance(problem, JobError):
        return replace(base, error_type=problem.type_name, error_message=problem.message)
    return replace(base, error_type=type(problem).__name__, error_message=str(problem))


def from_history(job_id: str, detail: JobDetail, marker: dict[str, Any] | None) -> Outcome:
    """The job's record, or (for a submission of the CLI's own, which has none) what its
    children add up to, against the number of jobs the submission's marker says it made."""
    children = _children(detail.children, marker)
    job = detail.job
    if job is None:
        assert children is not None  # get_job finds a record, children, or nothing
        return _submission_outcome(job_id, children, marker)
    return Outcome(
        job_id,
        job.status,
        job.function,
        result=job.result,
        error_type=job.error_type,
        error_message=job.error_message,
        source="history",
        tries=job.tries,
        finished_at=job.finished_at.isoformat(),
        next_retry_at=job.next_retry_at.isoformat() if job.next_retry_at else None,
        retryable=job.retryable,
        children=children,
    )


def _children(
    submission: Submission | None, marker: dict[str, Any] | None
) -> dict[str, Any] | None:
    if submission is None:
        return None
    failures = [
        {"job_id": f.job_id, "error": f"{f.error_type}: {f.error_message}"}
        for f in submission.failures
    ]
    return {
        "jobs": (marker or {}).get("jobs"),
        "recorded": submission.recorded,
        "states": submission.states,
        "failures": failures,
        "totals": submission.totals,
    }


def _submission_outcome(
    parent_id: str, children: dict[str, Any], marker: dict[str, Any] | None
) -> Outcome:
    states, jobs = children["states"], children["jobs"]
    finished = jobs is None or children["recorded"] >= jobs  # forgotten by Redis: all ran
    function = (marker or {}).get("function")
    outcome = Outcome(parent_id, "in_progress", function, source="history", children=children)
    if not finished:
        return outcome
    if states.get("failed"):
        first = children["failures"][0]
        message = (
            f"{states['failed']} of {children['recorded']} jobs failed; "
            f"first, {first['job_id']}: {first['error']}"
        )
        return replace(
            outcome, status="failed", error_type="SubmissionFailed", error_message=message
        )
    return replace(outcome, status="succeeded", result=children["totals"])


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
        return await _from_history(backends, job_id)
    function = None
    if describe:
        definition = await job.info()
        function = definition.function if definition else None
    return await _with_retry_note(backends, Outcome(job_id, status.value, function))


async def _from_history(backends: Backends, job_id: str) -> Outcome | None:
    """The durable record in the job history, kept long after Redis forgets the job; for a
    submission none of whose jobs has ended yet, its marker in Redis."""
    from domain.errors import JobNotFound
    from domain.services import get_job

    marker = await _submission_marker(backends, job_id)
    async with backends.unit_of_work() as uow:
        try:
            return from_history(job_id, await get_job(uow, job_id), marker)
        except JobNotFound:
            pass
    if marker is None:
        return None
    children: dict[str, Any] = {
        "jobs": marker.get("jobs"),
        "recorded": 0,
        "states": {},
        "failures": [],
    }
    return Outcome(job_id, "queued", marker.get("function"), children=children)


async def _with_retry_note(backends: Backends, outcome: Outcome) -> Outcome:
    """A job waiting for its next try is retrying: say after what, from the worker's note
    in Redis (written even when the database is what failed)."""
    if outcome.status != "deferred":
        return outcome
    from worker.history import read_retry_note

    retry = await read_retry_note(await backends.queue(), outcome.job_id)
    if retry is None:
        return outcome
    return replace(
        outcome,
        status="retrying",
        tries=retry.get("tries"),
        error_type=retry.get("error_type"),
        error_message=retry.get("error_message"),
        next_retry_at=retry.get("retry_at"),
    )


async def _submission_marker(backends: Backends, parent_id: str) -> dict[str, Any] | None:
    import orjson

    raw = await (await backends.queue()).get(SUBMISSION_PREFIX + parent_id)
    marker = orjson.loads(raw) if raw is not None else None
    return marker if isinstance(marker, dict) else None


async def mark_submission(
    backends: Backends, parent_id: str, function: str, job_ids: Sequence[str]
) -> None:
    """Remember, for as long as arq keeps the jobs, that ``parent_id`` became ``job_ids``."""
    import orjson

    queue = await backends.queue()
    marker = orjson.dumps({"function": function, "jobs": len(job_ids)})
    await queue.set(SUBMISSION_PREFIX + parent_id, marker, px=queue.expires_extra_ms)


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


async def await_outcome(
    backends: Backends, job_id: str, deadline: float | None, *, quiet: bool = False
) -> Outcome:
    """Poll until the job ends, saying so as each try is retried (unless ``quiet``);
    Ctrl-C or the deadline stop the wait, not the job."""
    started = time.monotonic()
    delay = FIRST_POLL
    hinted = False
    retries_told: set[int | None] = set()
    try:
        while True:
            outcome = await current_outcome(backends, job_id)
            if outcome is None:
                raise CliError(f"job {job_id} is unknown: not in Redis, not in the job history")
            if outcome.done:
                return outcome
            if outcome.status == "retrying" and outcome.tries not in retries_told and not quiet:
                retries_told.add(outcome.tries)
                note(
                    f"try {outcome.tries} failed ({outcome.described_error()}); "
                    f"retrying at {output.short_time(outcome.next_retry_at)}"
                )
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
    backends: Backends, job_ids: Sequence[str], deadline: float | None, bar: Bar
) -> list[Outcome]:
    """Wait for many jobs, reading all their results in one round trip per poll."""
    outcomes: dict[str, Outcome] = {}
    delay = FIRST_POLL
    bar.plan(len(job_ids), f"{len(job_ids)} jobs")
    while len(outcomes) < len(job_ids):
        pending = [job_id for job_id in job_ids if job_id not in outcomes]
        outcomes.update(await _read_results(backends, pending))
        bar.advance_to(len(outcomes))
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


def combined(job_id: str, function: str, outcomes: Sequence[Outcome]) -> Outcome:
    """Several jobs of one submission read as one: counts summed, failures listed."""
    failures = [o for o in outcomes if o.status == "failed"]
    totals = dict.fromkeys(COUNTED, 0)
    for outcome in outcomes:
        result = outcome.result if isinstance(outcome.result, dict) else {}
        for key in COUNTED:
            totals[key] += result.get(key, 0) if isinstance(result.get(key), int) else 0
    run_ids = {o.result.get("run_id") for o in outcomes if isinstance(o.result, dict)} - {None}
    result = {**({"run_id": run_ids.pop()} if len(run_ids) == 1 else {}), **totals}
    states = {"succeeded": len(outcomes) - len(failures), "failed": len(failures)}
    children = {"recorded": len(outcomes), "states": states, "failures": []}
    outcome = Outcome(job_id, "succeeded", function, result=result, children=children)
    if not failures:
        return outcome
    first = failures[0]
    message = f"{len(failures)} of {len(outcomes)} jobs failed; first, {first.job_id}: "
    return replace(
        outcome,
        status="failed",
        error_type=first.error_type,
        error_message=message + str(first.error_message),
    )


def check_deadline(deadline: float | None, state: str, job_id: str) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise CliError(
            f"gave up waiting: {state}; it goes on (see `jobs status {job_id}`)",
            EXIT_TIMEOUT,
            job_id=job_id,
        )


async def hint_if_no_worker(backends: Backends) -> None:
    from arq.constants import health_check_key_suffix

    queue = await backends.queue()
    if not await queue.exists(backends.settings.queue_name + health_check_key_suffix):
        note("still waiting, and no worker seems to be running: start one with `jobs worker`")


class Bar:
    """A Rich progress bar on stderr, or nothing at all (``--json``)."""

    def __init__(self, progress: Progress | None, description: str) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        if progress is not None:
            self._task = progress.add_task(description, total=None)

    def plan(self, total: int, description: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total, description=description)

    def advance_to(self, done: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done)


@contextmanager
def progress_bar(enabled: bool, description: str) -> Iterator[Bar]:
    if not enabled:
        yield Bar(None, description)
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
    with Progress(*columns, console=output.stderr(), transient=True) as progress:
        yield Bar(progress, description)


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
    from worker.jobs import GENERATE_CHUNK

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
