"""The ends of a job that ``run_job`` does not see itself, written to the history all the
same: its timeout, an operator's abort, and arq's failures of a job it never ran.

- A timeout is ours (``deliver``), a little before arq's (``arq_timeout``): it cancels the
  try where it is, inside its unit of work, which rolls back; then the try fails as any
  try does, in fresh transactions (``handle_failure``): retried while tries remain, else
  recorded as failed, or kept in the outbox while the database is away.
- An abort (``dbjobs cancel`` of a running job) is recorded as the job's cancellation.
- arq fails a job without running it when its tries are spent before it starts (a job
  whose deliveries kept dying with their worker) or when it was aborted before it
  started: ``ClaimingWorker`` hands those to ``record_unrun``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Container, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from arq.utils import ms_to_datetime

from domain.db import utcnow
from domain.repositories import JobStamp
from worker.bootstrap import Services, services_of
from worker.ops.enqueue import PARENT_KWARG
from worker.registry import JOBS, Job
from worker.runtime.delivery import payload_from, run_job, stamp_of
from worker.runtime.failures import MAX_JOB_ID, InvalidPayload, handle_failure, record_failure
from worker.runtime.outbox import defer_failure
from worker.runtime.retry import JobTimedOut
from worker.serialization import JobError, deserialize, recordable_payload
from worker.text import first_line

log = logging.getLogger("worker.jobs")

ABORTING_KEY = "aborting_jobs"  # in ctx: arq's set of the ids of the jobs it is aborting
# arq's own timeout comes this long after ours: the time to write the failure down.
TIMEOUT_MARGIN_SECONDS = 10
ABORTED = "cancelled while it ran (jobs cancel)"
ARQ_GAVE_UP = "arq failed it without running it"
_CRON_NAMES = {job.cron_name: job.name for job in JOBS.values() if job.cron is not None}


def arq_timeout(job: Job[Any]) -> int:
    """The timeout arq is given for ``job``: a backstop behind ``deliver``'s."""
    return job.timeout + TIMEOUT_MARGIN_SECONDS


async def deliver(
    ctx: dict[str, Any],
    job: Job[Any],
    args: tuple[Any, ...] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    max_tries: int | None = None,
) -> dict[str, Any]:
    """``run_job`` within ``job.timeout``; a timeout or an abort is written down."""
    started = utcnow()
    limit = asyncio.timeout(job.timeout)
    try:
        async with limit:
            return await run_job(ctx, job, args, kwargs, max_tries=max_tries)
    except TimeoutError:
        if not limit.expired():
            raise
    except asyncio.CancelledError:
        if job_aborted(ctx):
            await asyncio.shield(_record_abort(ctx, job, args, kwargs, started))
        raise
    services = services_of(ctx)
    stamp, raw = _attempt(services, ctx, job, args, kwargs, started)
    error = JobTimedOut(
        f"{job.name} ran longer than its {job.timeout} s timeout: cancelled, its "
        "transaction rolled back"
    )
    tries = max_tries or job.max_tries or services.settings.max_tries
    return await handle_failure(services, stamp, raw, error, max_tries=tries)


def job_aborted(ctx: Mapping[str, Any]) -> bool:
    """Whether the cancellation of this job's try is an operator's abort (arq notes the
    job's id before it cancels the try), rather than a shutdown's."""
    aborting = ctx.get(ABORTING_KEY)
    return isinstance(aborting, Container) and ctx.get("job_id") in aborting


def _attempt(
    services: Services,
    ctx: Mapping[str, Any],
    job: Job[Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None,
    started: datetime,
) -> tuple[JobStamp, Any]:
    """The try's stamp and payload, as ``run_job`` would have recorded them."""
    stamp = replace(stamp_of(ctx, job.name, services.worker_id), started_at=started)
    named = dict(kwargs or {})
    parent = named.pop(PARENT_KWARG, None)
    if isinstance(parent, str) and 0 < len(parent) <= MAX_JOB_ID:
        stamp = replace(stamp, parent_id=parent)
    try:
        raw = job.complete(payload_from(job.name, args, named), services.settings, stamp.job_id)
    except InvalidPayload:
        raw = None
    return stamp, raw


async def _record_abort(
    ctx: dict[str, Any],
    job: Job[Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None,
    started: datetime,
) -> None:
    services = services_of(ctx)
    stamp, raw = _attempt(services, ctx, job, args, kwargs, started)
    try:
        await record_cancelled(services, stamp, recordable_payload(raw))
    except Exception as problem:
        log.warning("job %s: its cancellation could not be recorded: %s", stamp.job_id,
                    first_line(problem))  # fmt: skip


async def record_cancelled(
    services: Services, stamp: JobStamp, payload: dict[str, Any] | None
) -> None:
    async with services.unit_of_work() as uow:
        await uow.jobs.record_cancelled(stamp, message=ABORTED, payload=payload)
        await uow.commit()


async def record_unrun(
    services: Services, job_id: str, result_data: bytes, *, not_ours: Container[str] = ()
) -> None:
    """Write down a job arq failed without running it, from the result arq stored for it.
    Never raises: arq's own bookkeeping of the job is done already."""
    try:
        await _record_unrun(services, job_id, deserialize(result_data), not_ours)
    except Exception as problem:
        log.warning("job %s: arq failed it before it ran, and the history could not record "
                    "it: %s", job_id, first_line(problem))  # fmt: skip


async def _record_unrun(
    services: Services, job_id: str, result: dict[str, Any], not_ours: Container[str]
) -> None:
    function, error = result.get("f"), result.get("r")
    # An expired job names no function; the sweep closes what the history left open.
    if not isinstance(function, str) or function in not_ours or function == "<unknown>":
        return
    if not isinstance(error, JobError) or len(job_id) > MAX_JOB_ID:
        return
    started, enqueued = result.get("st"), result.get("et")
    stamp = JobStamp(
        job_id=job_id,
        function=_CRON_NAMES.get(function, function)[:100],
        tries=int(result.get("t") or 1),
        started_at=ms_to_datetime(started) if isinstance(started, int) else utcnow(),
        worker=services.worker_id,
        enqueued_at=ms_to_datetime(enqueued) if isinstance(enqueued, int) else None,
    )
    payload = _payload(function, result.get("a"), result.get("k"))
    if error.type_name == "CancelledError":
        await record_cancelled(services, stamp, payload)
        return
    failure = {
        "error_type": error.type_name,
        "message": f"{error.message}: {ARQ_GAVE_UP}",
        "payload": payload,
        "retryable": True,
    }
    try:
        await record_failure(services, stamp, failure)
    except Exception as problem:
        log.warning("job %s: the history will record its failure once it can: %s", job_id,
                    first_line(problem))  # fmt: skip
        await defer_failure(services.redis, stamp, failure)


def _payload(function: str, args: Any, kwargs: Any) -> dict[str, Any] | None:
    named = dict(kwargs) if isinstance(kwargs, dict) else {}
    named.pop(PARENT_KWARG, None)
    try:
        return recordable_payload(payload_from(function, tuple(args or ()), named))
    except InvalidPayload:
        return None
