"""Use cases over the job history: what happened to a job, and what an operator does with
the ones that failed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain import schemas
from domain.db import utcnow
from domain.errors import InvalidRequest, JobNotFound
from domain.uow import UnitOfWork
from domain.views import (
    JobDetail,
    JobHeader,
    JobSummary,
    JobView,
    RetryPlan,
    Submission,
    TryView,
    add_up,
)

MAX_JOB_ID = 200  # job_records.job_id
MAX_RETRIES = 1000
FAILURES_SHOWN = 5
MAX_SUMMED = 10_000  # children whose results a submission's totals add up


async def get_job(uow: UnitOfWork, job_id: str) -> JobDetail:
    """A job's record and earlier tries, and the jobs it became (if it is a submission)."""
    record = await uow.jobs.get(job_id)
    children = await get_submission(uow, job_id)
    if record is None and children is None:
        raise JobNotFound(job_id)
    tries = await uow.jobs.tries_of(job_id) if record is not None else []
    return JobDetail(
        job=JobView.model_validate(record) if record is not None else None,
        earlier_tries=[TryView.model_validate(t) for t in tries if t.try_number < record.tries]
        if record is not None
        else [],
        children=children,
    )


async def get_submission(uow: UnitOfWork, parent_id: str) -> Submission | None:
    """How far the jobs of a submission got, by state; None when none has been recorded."""
    states = await uow.jobs.count_children(parent_id)
    if not states:
        return None
    failures = await uow.jobs.children_of(parent_id, status="failed", limit=FAILURES_SHOWN)
    totals: dict[str, int] = {}
    async for results in uow.jobs.results_of(parent_id, status="succeeded", limit=MAX_SUMMED):
        add_up(results, totals)
    return Submission(
        parent_id=parent_id,
        states=states,
        failures=[JobSummary.model_validate(f) for f in failures],
        totals=totals,
    )


async def list_jobs(uow: UnitOfWork, query: schemas.ListJobs) -> list[JobSummary]:
    records = await uow.jobs.list_recent(
        status=query.status, function=query.function, limit=query.limit, before=query.before
    )
    return [JobSummary.model_validate(record) for record in records]


async def list_children(
    uow: UnitOfWork, parent_id: str, status: str, limit: int
) -> list[JobSummary]:
    """A submission's jobs in one state, oldest first."""
    records = await uow.jobs.children_of(parent_id, status=status, limit=limit)
    return [JobSummary.model_validate(record) for record in records]


async def recent_counts(uow: UnitOfWork, seconds: int) -> dict[str, int]:
    """How many jobs ended in each state over the last ``seconds``."""
    return await uow.jobs.count_since(utcnow() - timedelta(seconds=seconds))


async def list_failed(uow: UnitOfWork, limit: int) -> list[JobHeader]:
    """Failures nobody has marked handled yet, newest first (their payloads are on each
    job's own page)."""
    return [JobHeader.model_validate(record) for record in await uow.jobs.list_failed(limit)]


async def mark_handled(uow: UnitOfWork, job_ids: list[str] | None) -> int:
    """Mark failures as handled (every unhandled one when ``job_ids`` is None)."""
    marked = await uow.jobs.mark_handled(job_ids)
    await uow.commit()
    return marked


async def cancel_job(
    uow: UnitOfWork, job_id: str, function: str, enqueued_at: datetime | None = None
) -> bool:
    """Record a job taken off the queue before it ran; False when it already has a record."""
    cancelled = await uow.jobs.cancel(job_id, function, enqueued_at)
    await uow.commit()
    return cancelled


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
