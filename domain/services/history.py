"""Use cases over the job history: what happened to a job, and what an operator does with
the ones that failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from domain import schemas
from domain.db import utcnow
from domain.errors import InvalidRequest, JobNotFound
from domain.uow import UnitOfWork
from domain.views import (
    FlowCount,
    JobDetail,
    JobHeader,
    JobSummary,
    JobView,
    RetryPlan,
    Submission,
    TryView,
)

if TYPE_CHECKING:
    from domain.models import JobRecord, JobTry

MAX_JOB_ID = 200  # job_records.job_id
MAX_RETRIES = 1000


def _earlier(attempt: JobTry, record: JobRecord) -> bool:
    """A try before the record's own: of a lower number, or (a job left for a worker that
    knows its payload's version spends no try) of the same number and ended before it."""
    return attempt.try_number < record.tries or attempt.finished_at < record.finished_at


@dataclass(frozen=True)
class LostJob:
    """A retrying job a sweep found nowhere in the queue: closed as failed with this error."""

    job_id: str
    seen_ended: datetime  # its last try's end, as the sweep read it
    error_type: str
    message: str


async def get_job(uow: UnitOfWork, job_id: str) -> JobDetail:
    """A job's record and earlier tries, and the jobs it became (if it is a submission)."""
    record = await uow.jobs.get(job_id)
    children = await get_submission(uow, job_id)
    if record is None and children is None:
        raise JobNotFound(job_id)
    tries = await uow.jobs.tries_of(job_id) if record is not None else []
    return JobDetail(
        job=JobView.model_validate(record) if record is not None else None,
        earlier_tries=[TryView.model_validate(t) for t in tries if _earlier(t, record)]
        if record is not None
        else [],
        children=children,
    )


async def get_submission(uow: UnitOfWork, parent_id: str) -> Submission | None:
    """How far the jobs of a submission got, by state; None when none has been recorded."""
    return await uow.jobs.submission(parent_id)


async def list_jobs(uow: UnitOfWork, query: schemas.ListJobs) -> list[JobSummary]:
    return await uow.jobs.list_recent(
        status=query.state, function=query.function, limit=query.limit, before=query.before
    )


async def list_children(
    uow: UnitOfWork, parent_id: str, status: str, limit: int
) -> list[JobSummary]:
    """A submission's jobs in one state, oldest first."""
    records = await uow.jobs.children_of(parent_id, status=status, limit=limit)
    return [JobSummary.model_validate(record) for record in records]


async def recent_counts(uow: UnitOfWork, seconds: int) -> dict[str, int]:
    """How many jobs ended in each state over the last ``seconds``."""
    return await uow.jobs.count_since(utcnow() - timedelta(seconds=seconds))


async def job_flow(uow: UnitOfWork, seconds: int, bucket_seconds: int) -> list[FlowCount]:
    """How many jobs finished in each ``bucket_seconds`` of the last ``seconds``, by
    function and state, oldest bucket first."""
    since = utcnow() - timedelta(seconds=seconds)
    rows = await uow.jobs.finished_per_bucket(since, bucket_seconds)
    return [
        FlowCount(start=start, function=function, state=status, jobs=jobs)
        for start, function, status, jobs in rows
    ]


async def recent_unhandled_failures(uow: UnitOfWork, seconds: int) -> int:
    """Failures over the last ``seconds`` that nobody has marked handled (or retried)."""
    return await uow.jobs.count_unhandled_failed_since(utcnow() - timedelta(seconds=seconds))


async def list_failed(uow: UnitOfWork, limit: int) -> list[JobHeader]:
    """Failures nobody has marked handled yet, newest first (their payloads are on each
    job's own page)."""
    return await uow.jobs.list_failed(limit)


async def mark_handled(uow: UnitOfWork, job_ids: list[str] | None) -> int:
    """Mark failures as handled (every unhandled one when ``job_ids`` is None)."""
    marked = await uow.jobs.mark_handled(job_ids)
    await uow.commit()
    return marked


async def cancel_job(
    uow: UnitOfWork,
    job_id: str,
    function: str,
    payload: dict[str, Any] | None = None,
    enqueued_at: datetime | None = None,
) -> bool:
    """Record a job taken off the queue before it ran, with its payload (a retry starts
    from it); False when it already has a record."""
    cancelled = await uow.jobs.cancel(job_id, function, payload, enqueued_at)
    await uow.commit()
    return cancelled


async def open_retries(
    uow: UnitOfWork, *, idle_seconds: float, limit: int
) -> list[tuple[str, datetime]]:
    """The jobs the history says are retrying whose last try ended ``idle_seconds`` ago or
    more: (job id, when that try ended), for a sweep to check against the queue."""
    cutoff = utcnow() - timedelta(seconds=idle_seconds)
    return await uow.jobs.retrying_before(cutoff, limit=limit)


async def close_lost_jobs(uow: UnitOfWork, lost: list[LostJob]) -> list[str]:
    """Fail the retrying jobs that no queue holds any more, each only if its last try is
    still the one the sweep saw; the ids closed."""
    closed = [
        job.job_id
        for job in lost
        if await uow.jobs.close_retrying(
            job.job_id, seen_ended=job.seen_ended, error_type=job.error_type, message=job.message
        )
    ]
    await uow.commit()
    return closed


async def plan_retry(uow: UnitOfWork, job_id: str, *, force: bool = False) -> RetryPlan:
    """The function, payload and id of a failed job's next attempt, ``<job id>:retry:<n>``.

    While an attempt is queued its id stays the same, so asking twice enqueues it once;
    once an attempt has failed the next one gets the next number; once one has succeeded
    there is nothing left to retry. A job that failed for a reason running it again cannot
    change (an invalid payload, an unknown id) is retried only when forced.
    """
    record = await uow.jobs.get(job_id)
    if record is None:
        raise JobNotFound(job_id)
    if record.status == "succeeded":
        raise InvalidRequest(f"job {job_id} succeeded: there is nothing to retry")
    if record.status == "retrying" and not force:
        # Its next try is still due: another attempt now would run the job twice at once.
        raise InvalidRequest(
            f"job {job_id} is still retrying (try {record.tries} failed): wait for it, or "
            "use --force"
        )
    if record.retryable is False and not force:
        raise InvalidRequest(
            f"job {job_id} failed with {record.error_type}, which running it again will not "
            "change (use --force to retry it anyway)"
        )
    if record.payload is None and record.status == "cancelled":
        raise InvalidRequest(
            f"job {job_id} was cancelled before it ran and the history kept no payload for "
            "it (it was cancelled by an older version): enqueue it anew"
        )
    if record.payload is None:
        raise InvalidRequest(
            f"job {job_id} has no recorded payload (not a JSON object, or too large): "
            "enqueue it anew"
        )
    payload: dict[str, Any] = dict(record.payload)
    return RetryPlan(
        function=record.function, payload=payload, attempt_id=await _next_attempt(uow, job_id)
    )


async def _next_attempt(uow: UnitOfWork, job_id: str) -> str:
    for attempt in range(1, MAX_RETRIES + 1):
        attempt_id = f"{job_id}:retry:{attempt}"
        if len(attempt_id) > MAX_JOB_ID:
            raise InvalidRequest(f"job {job_id}: its id is too long to derive a retry id from")
        record = await uow.jobs.get(attempt_id)
        if record is None or record.status == "retrying":  # new, or that one is still going
            return attempt_id
        if record.status == "succeeded":
            raise InvalidRequest(f"job {job_id} was already retried: {attempt_id} succeeded")
    raise InvalidRequest(f"job {job_id} was retried {MAX_RETRIES} times already")
