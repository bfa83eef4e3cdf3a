"""Runs one delivery of a job: validate, one unit of work; a failure goes to
``worker.runtime.failures``.

Every job, cron jobs and fan-outs included, goes through ``run_job``: there is no per-job
try/except.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from arq.utils import timestamp_ms
from pydantic import BaseModel, ValidationError

from domain.db import utcnow
from domain.repositories import JobStamp, LedgerRowExists
from domain.schemas import Payload
from domain.services import handler_for
from domain.uow import DuplicateJob
from worker.bootstrap import Services, services_of
from worker.ops.enqueue import PARENT_KWARG, enqueue_many
from worker.registry import FollowUps, Job
from worker.runtime.failures import (
    MAX_JOB_ID,
    InvalidPayload,
    count_duplicate,
    duplicate_outcome,
    handle_failure,
)
from worker.runtime.prometheus import job_meter
from worker.serialization import (
    MINTED_KWARG,
    RefusedPayload,
    UnreadablePayload,
    recordable_payload,
)

P = TypeVar("P", bound=Payload)
# The function a job goes to when no function of the worker can take it: not a name any
# job of the registry can have.
REFUSED = "(refused)"
_REFUSED_METER = job_meter(REFUSED)
# Failed jobs keep their payload for `dbjobs retry`; succeeded ones only a small one, so that
# the history of metric batches does not store every point a second time.
MAX_KEPT_SUCCESS_PAYLOAD = 4 * 1024


def payload_from(function: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """Jobs take one JSON object, either as the sole argument or as keyword arguments."""
    if args and kwargs:
        raise InvalidPayload(function, "pass one payload object or keyword arguments, not both")
    if len(args) > 1:
        raise InvalidPayload(function, f"expected one payload object, got {len(args)} arguments")
    return args[0] if args else dict(kwargs)


def stamp_of(ctx: Mapping[str, Any], function: str, worker: str | None = None) -> JobStamp:
    enqueued = ctx.get("enqueue_time")  # fixed by the producer: every delivery carries it
    return JobStamp(
        job_id=str(ctx.get("job_id", "")),
        function=function,
        tries=int(ctx.get("job_try", 1)),
        started_at=utcnow(),
        worker=worker,
        enqueued_at=enqueued if isinstance(enqueued, datetime) and enqueued.tzinfo else None,
        minted=ctx.get(MINTED_KWARG) is True,
    )


def _parent(function: str, parent_id: Any) -> str | None:
    if parent_id is None or (isinstance(parent_id, str) and 0 < len(parent_id) <= MAX_JOB_ID):
        return parent_id
    raise InvalidPayload(function, f"{PARENT_KWARG}: a job id of 1 to {MAX_JOB_ID} characters")


def validate(job: Job[P], raw: Any) -> P:
    if isinstance(raw, RefusedPayload):
        raise InvalidPayload(job.name, raw.describe())
    try:
        return job.schema.model_validate(raw)
    except ValidationError as error:
        raise InvalidPayload(job.name, error) from None


async def run_job(
    ctx: dict[str, Any],
    job: Job[Any],
    args: tuple[Any, ...] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    max_tries: int | None = None,
) -> dict[str, Any]:
    """One delivery of ``job``: its use case and its ledger row commit together, or nothing.

    A job with a fan-out records its success only after enqueueing its follow-up jobs
    (under fixed ids), so a re-delivery after a crash in between enqueues what is missing.
    """
    services = services_of(ctx)
    stamp = stamp_of(ctx, job.name, services.worker_id)
    raw: Any = None
    try:
        if len(stamp.job_id) > MAX_JOB_ID:
            raise InvalidPayload(job.name, f"a job id of at most {MAX_JOB_ID} characters")
        kwargs = dict(kwargs or {})
        stamp = replace(stamp, parent_id=_parent(job.name, kwargs.pop(PARENT_KWARG, None)))
        raw = job.complete(payload_from(job.name, args, kwargs), services.settings, stamp.job_id)
        stamp = replace(stamp, payload=recordable_payload(raw, MAX_KEPT_SUCCESS_PAYLOAD))
        payload = validate(job, raw)
        result = await _run_use_case(services, job, stamp, payload)
        if job.fan_out is not None:
            await fan_out(services, stamp, job.fan_out(payload, result), result)
    except DuplicateJob:
        return await duplicate_outcome(services, stamp)
    except Exception as error:
        tries = max_tries or job.max_tries or services.settings.max_tries
        return await handle_failure(services, stamp, raw, error, max_tries=tries)
    return result.model_dump(mode="json")


async def _run_use_case(services: Services, job: Job[P], stamp: JobStamp, payload: P) -> BaseModel:
    """The use case in one unit of work with the job's ledger row (a fan-out writes its
    row later). A first try inserts the row; one that finds a row there (a retry noted
    without a try count, a re-delivery racing the first) runs again against it."""
    use_case = job.use_case or handler_for(job.schema)
    if job.fan_out is not None:
        async with services.unit_of_work() as uow:
            return await use_case(uow, payload)
    try:
        async with services.unit_of_work(replace(stamp, first_record=stamp.tries == 1)) as uow:
            return await use_case(uow, payload)
    except LedgerRowExists:
        async with services.unit_of_work(stamp) as uow:
            return await use_case(uow, payload)


def refusal(function: Any, reason: str) -> dict[str, Any]:
    """arq's data of a job for ``REFUSED``: what a worker reads instead of a job that no
    function of its can take."""
    named = function if isinstance(function, str) else None
    return {
        "t": None,
        "f": REFUSED,
        "a": [UnreadablePayload(reason, named)],
        "k": {},
        "et": timestamp_ms(),
    }


async def refused(ctx: dict[str, Any], marker: UnreadablePayload) -> dict[str, Any]:
    """The function of ``REFUSED``."""
    return await _REFUSED_METER.measure(_refuse(ctx, marker))


async def _refuse(ctx: dict[str, Any], refusal: UnreadablePayload) -> dict[str, Any]:
    """A job no function of this worker can take (it names none, or one not registered):
    failed once and recorded under the name it gave, as a registered job refuses a payload
    it cannot read."""
    services = services_of(ctx)
    function = _recordable_name(refusal.function)
    stamp = stamp_of(ctx, function, services.worker_id)
    error = InvalidPayload(function, refusal.describe())
    return await handle_failure(services, stamp, None, error, max_tries=1)


def _recordable_name(function: str | None) -> str:
    """A producer's function name as the history keeps it (every face escapes it when it
    shows it): at most 100 characters, a NUL, which PostgreSQL cannot store, escaped."""
    return function.replace("\x00", "\\u0000")[:100] if function else "?"


async def fan_out(services: Services, stamp: JobStamp, jobs: FollowUps, result: BaseModel) -> None:
    """Enqueue the follow-up jobs in bulk (one already queued or finished is skipped by its
    id), then write the job's ledger row. A re-delivery still returns its result (the same
    plan, its follow-up jobs enqueued again where missing), counted as a duplicate."""
    queue, parent = services.settings.queue_name, stamp.job_id
    follow_ups = (jobs.function, jobs.payloads, jobs.job_ids)
    await enqueue_many(services.redis, *follow_ups, queue_name=queue, parent_id=parent)
    try:
        async with services.unit_of_work(stamp) as uow:
            await uow.commit(result)
    except DuplicateJob:
        await count_duplicate(services, stamp)
