"""Use cases over the job history: what an operator does with a job that failed."""

from __future__ import annotations

from typing import Any

from domain.errors import InvalidRequest, JobNotFound
from domain.uow import UnitOfWork
from domain.views import RetryPlan

MAX_JOB_ID = 200  # job_records.job_id
MAX_RETRIES = 1000


async def plan_retry(uow: UnitOfWork, job_id: str) -> RetryPlan:
    """The function, payload and id of a failed job's next attempt, ``<job id>:retry:<n>``.

    While an attempt is queued its id stays the same, so asking twice enqueues it once;
    once an attempt has failed the next one gets the next number; once one has succeeded
    there is nothing left to retry.
    """
    record = await uow.jobs.get(job_id)
    if record is None:
        raise JobNotFound(job_id)
    if record.status == "succeeded":
        raise InvalidRequest(f"job {job_id} succeeded: there is nothing to retry")
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
        if record is None:
            return attempt_id
        if record.status == "succeeded":
            raise InvalidRequest(f"job {job_id} was already retried: {attempt_id} succeeded")
    raise InvalidRequest(f"job {job_id} was retried {MAX_RETRIES} times already")
