"""What producers and operators do to jobs, whichever face asks (the CLI, the console): enqueue
a checked payload once per job id, or many as one submission; retry a failure; cancel a
waiting job. Each refusal is a ``Refused`` with the sentence to show; the face decides how
to show it (a line and an exit code, an HTTP status). ``worker.ops.following`` waits for
what was enqueued.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from worker.ops.job_state import Outcome, Sources, current_outcome
from worker.ops.submissions import mark_submission
from worker.text import printable

if TYPE_CHECKING:
    from domain.views import RetryPlan
    from worker.lanes import Lane
    from worker.ops.enqueue import ReplicaAck
    from worker.registry import Job
    from worker.settings import Settings

RefusalKind = Literal["not_found", "conflict"]
MAX_JOB_ID = 150  # room for the suffixes of batches and retries in job_records.job_id (200)


class NotReplicated(Exception):
    """Jobs written on the primary that too few replicas acknowledged in time: a failover
    now could lose them. Enqueueing them again under the same ids is safe."""

    def __init__(self, ack: ReplicaAck, acknowledged: int, job_ids: Sequence[str]) -> None:
        self.job_ids = list(job_ids)
        super().__init__(
            f"{acknowledged} of the {ack.replicas} Redis replicas asked for "
            f"(JOBS_ENQUEUE_REPLICAS) acknowledged {len(job_ids)} job(s) within "
            f"{ack.timeout_ms} ms: they are on the primary only, and a failover could lose "
            "them; enqueue them again under the same job ids"
        )


class Producer(Sources, Protocol):
    """Sources that enqueue, as their settings say (how many replicas must hold a job)."""

    settings: Settings


class Refused(Exception):
    """A request that cannot be carried out as asked; nothing was changed."""

    def __init__(self, message: str, *, job_id: str | None = None, kind: RefusalKind = "conflict"):
        super().__init__(message)
        self.message = message
        self.job_id = job_id
        self.kind = kind


def job_id_problem(given: str) -> str | None:
    """What is wrong with a job id chosen by a producer (any visible text, markup
    characters included); None when it will do."""
    if printable(given) != given:
        return "control and bidi characters are not allowed"
    if not given or len(given) > MAX_JOB_ID or any(c.isspace() for c in given):
        return f"1 to {MAX_JOB_ID} characters, no spaces"
    return None


def checked_payload(
    job: Job[Any], raw: Mapping[str, Any], settings: Settings, job_id: str
) -> dict[str, Any]:
    """The payload to send: the fields given, checked by the job's schema (with the worker's
    defaults for the rest), as JSON; the defaults themselves are left to the worker.

    Raises pydantic's ``ValidationError``: each face names the fields its own way.
    """
    model = job.schema.model_validate(job.complete(dict(raw), settings, job_id))
    payload: dict[str, Any] = model.model_dump(mode="json", include=set(raw), exclude_unset=True)
    return payload


async def enqueue_once(
    sources: Producer,
    function: str,
    payload: dict[str, Any],
    job_id: str,
    *,
    lane: Lane | None = None,
) -> bool:
    """Enqueue ``function(payload)`` as ``job_id`` in ``lane`` (by default its job's): True
    when enqueued, False when that very request already exists under the id (nothing
    new); another request under it is refused. Raises ``NotReplicated`` when the replicas
    the settings ask for did not acknowledge it."""
    from worker.ops.enqueue import ReplicaAck, enqueue_many

    queue, replicas = await sources.queue(), ReplicaAck.of(sources.settings)
    if await enqueue_many(queue, function, [payload], [job_id], lane=lane, replicas=replicas):
        return True
    await refuse_another_request(sources, job_id, function, payload)
    return False


@dataclass(frozen=True)
class Submitted:
    """A submission enqueued: its jobs' ids, and how many of them already existed."""

    job_ids: list[str]
    deduplicated: int


async def enqueue_submission(
    sources: Producer,
    function: str,
    payloads: Iterable[dict[str, Any]],
    job_id: str,
    count: int,
    *,
    lane: Lane | None = None,
) -> Submitted:
    """``count`` jobs of one kind as one submission ``job_id``, enqueued as ``payloads`` come
    (the first batches reach the worker before the last are made). With more than one, their
    ids are ``<job id>:<n>``, each a child of ``job_id`` in the history, and a marker in
    Redis says how many there are, so that ``job_id`` is read as a whole meanwhile."""
    from worker.ops.enqueue import ReplicaAck, enqueue_many

    job_ids = [job_id] if count == 1 else [f"{job_id}:{n}" for n in range(count)]
    parent = job_id if count > 1 else None
    if parent is not None:
        await mark_submission(sources, parent, function, job_ids)
    queue = await sources.queue()
    replicas = ReplicaAck.of(sources.settings)
    new = await enqueue_many(
        queue, function, payloads, job_ids, lane=lane, parent_id=parent, replicas=replicas
    )
    return Submitted(job_ids, len(job_ids) - len(new))


async def refuse_another_request(
    sources: Sources, job_id: str, function: str, payload: dict[str, Any]
) -> None:
    """A reused job id is fine for the same request; for another one it is a mistake."""
    from worker.serialization import arguments_omitted

    known = await (await sources.job(job_id)).info()
    if known is None:  # finished and forgotten by Redis meanwhile: nothing to compare
        return
    same_payload = arguments_omitted(known.args) or list(known.args) == [payload]
    if known.function != function or not same_payload:
        raise Refused(
            f"job {job_id} already exists as {known.function} with another payload: "
            "nothing enqueued (choose another job id)",
            job_id=job_id,
        )


async def plan_attempt(sources: Sources, job_id: str, *, force: bool = False) -> RetryPlan:
    """The next attempt of a failed job, its recorded payload checked again (the job may
    have changed since it ran)."""
    from domain.errors import DomainError, NotFound
    from domain.services import plan_retry

    try:
        async with sources.unit_of_work() as uow:
            plan = await plan_retry(uow, job_id, force=force)
    except DomainError as refusal:
        kind: RefusalKind = "not_found" if isinstance(refusal, NotFound) else "conflict"
        raise Refused(str(refusal), job_id=job_id, kind=kind) from None
    return plan.model_copy(update={"payload": _retryable(job_id, plan.function, plan.payload)})


@dataclass(frozen=True)
class Attempt:
    """A retry of a failed job: its own job id, and whether it was enqueued just now."""

    job_id: str
    function: str
    new: bool


async def retry_failure(sources: Producer, job_id: str, *, force: bool = False) -> Attempt:
    """Enqueue the next attempt of a failed (or cancelled) job (``plan_attempt``), once: the
    same retry asked again while that attempt is queued enqueues nothing. The failure is
    handled once its retry is enqueued: the attempt is the one to watch (and, if it fails
    too, the one listed), so one retry never leaves two rows to handle."""
    from domain.services import mark_handled
    from worker.ops.job_ids import whole_job_id

    job_id = await whole_job_id(sources, job_id)
    plan = await plan_attempt(sources, job_id, force=force)
    new = await enqueue_once(sources, plan.function, plan.payload, plan.attempt_id)
    async with sources.unit_of_work() as uow:
        await mark_handled(uow, [job_id])
    return Attempt(plan.attempt_id, plan.function, new)


def _retryable(job_id: str, function: str, payload: dict[str, Any]) -> dict[str, Any]:
    from pydantic import ValidationError

    from worker.registry import JOBS
    from worker.text import problems

    job = JOBS.get(function)
    if job is None:
        raise Refused(f"job {job_id} ran {function!r}, which this version cannot enqueue")
    if job.job_id_field:  # an old record without it: the original job id named the thing made
        payload.setdefault(job.job_id_field, job_id)
    try:
        model = job.schema.model_validate(payload)
    except ValidationError as problem:
        told = "; ".join(problems(problem, plain=True))
        raise Refused(
            f"job {job_id} cannot be retried as it was, its recorded payload is invalid "
            f"(enqueue a corrected job instead): {told}",
            job_id=job_id,
        ) from None
    checked: dict[str, Any] = model.model_dump(
        mode="json", include=set(payload), exclude_unset=True
    )
    return checked


async def cancel(sources: Sources, job_id: str, *, queue_name: str) -> str:
    """Take a waiting job off the queue (recorded as cancelled), or ask for a running one to
    be aborted; what happened, in a few words."""
    from arq.constants import abort_jobs_ss
    from arq.jobs import JobStatus
    from arq.utils import timestamp_ms

    from domain.services import cancel_job
    from worker.ops.enqueue import take_off_queue
    from worker.ops.job_ids import whole_job_id
    from worker.serialization import recordable_payload

    job_id = await whole_job_id(sources, job_id)
    job = await sources.job(job_id)
    status = await job.status()
    queue = await sources.queue()
    if status is JobStatus.in_progress:
        # arq's abort: the worker running it cancels it (unless JOBS_ABORT_RUNNING_JOBS is
        # false there), and the job's own result and record say how it ended.
        await queue.zadd(abort_jobs_ss, {job_id: timestamp_ms()})
        if await job.status() in (JobStatus.complete, JobStatus.not_found):
            # It ended before the request: left there, the request would abort a later
            # job of the same id before it starts (python-arq/arq#485).
            await queue.zrem(abort_jobs_ss, job_id)
            raise Refused(f"job {job_id} ended before it could be cancelled", kind="conflict")
        return "abort requested"
    if status not in (JobStatus.queued, JobStatus.deferred):
        kind: RefusalKind = "not_found" if status is JobStatus.not_found else "conflict"
        message = f"job {job_id} is {status.value}: only a waiting job can be cancelled"
        raise Refused(message, kind=kind)
    definition = await job.info()
    if not await take_off_queue(queue, job_id, queue_name=queue_name):
        raise Refused(f"job {job_id} started before it could be cancelled", job_id=job_id)
    function = definition.function if definition else "?"
    # Kept as a worker keeps a payload, so that a cancelled job can be retried as it was.
    payload = recordable_payload(definition.args[0]) if definition and definition.args else None
    async with sources.unit_of_work() as uow:
        recorded = await cancel_job(
            uow, job_id, function, payload, definition.enqueue_time if definition else None
        )
    if not recorded:
        raise Refused(f"job {job_id} was taken off the queue, but it had already ended")
    return "cancelled"


async def handle_failures(sources: Sources, job_ids: list[str] | None) -> int:
    """Mark failures handled, each named by its id or a unique prefix of it (every unhandled
    one when ``job_ids`` is None); how many were marked."""
    from domain.services import mark_handled
    from worker.ops.job_ids import whole_job_id

    whole = None if job_ids is None else [await whole_job_id(sources, i) for i in job_ids]
    async with sources.unit_of_work() as uow:
        return await mark_handled(uow, whole)


async def enqueued_outcome(sources: Sources, job_id: str, function: str, *, new: bool) -> Outcome:
    """Where a job just enqueued stands, without waiting: queued when it is new; when its id
    was taken already, where that job stands (queued, if Redis forgot it meanwhile)."""
    if not new:
        outcome = await current_outcome(sources, job_id, describe=True)
        if outcome is not None:
            return outcome
    return Outcome.queued(job_id, function)
