"""Where a job stands: the read model the CLI (and any other face) shows.

From Redis while arq knows the job (queued, deferred, in_progress, or its result), with the
worker's retry note for a job waiting for its next try; from the job history once Redis has
forgotten it. A submission that became several jobs (a file's batches, a generation's
chunks) is read through its children, against the count its marker in Redis gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from arq.jobs import Job, JobResult

    from domain.uow import UnitOfWork
    from domain.views import JobDetail, Submission

FINAL = frozenset({"succeeded", "failed", "cancelled"})
SUBMISSION_PREFIX = "dbjobs:submission:"


class Sources(Protocol):
    """Where job state is read from: the queue's Redis and the history's database."""

    async def queue(self) -> ArqRedis: ...

    async def job(self, job_id: str) -> Job: ...

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]: ...


class UnknownJob(LookupError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} is unknown: not in Redis, not in the job history")


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
    sources: Sources, job_id: str, *, describe: bool = False
) -> Outcome | None:
    """Where the job stands now; None when neither Redis nor the job history knows it.

    ``describe`` also reads the function name of a job still waiting (one more round trip).
    """
    from arq.jobs import JobStatus

    job = await sources.job(job_id)
    for _ in range(2):  # a job may finish between the two reads: then read its result
        info = await job.result_info()
        if info is not None:
            return from_result(job_id, info)
        status = await job.status()
        if status is not JobStatus.complete:
            break
    if status is JobStatus.not_found:
        return await _from_history(sources, job_id)
    function = None
    if describe:
        definition = await job.info()
        function = definition.function if definition else None
    return await _with_retry_note(sources, Outcome(job_id, status.value, function))


async def known_outcome(sources: Sources, job_id: str, *, describe: bool = False) -> Outcome:
    """``current_outcome``, or ``UnknownJob`` when neither Redis nor the history knows it."""
    outcome = await current_outcome(sources, job_id, describe=describe)
    if outcome is None:
        raise UnknownJob(job_id)
    return outcome


async def _from_history(sources: Sources, job_id: str) -> Outcome | None:
    """The durable record in the job history, kept long after Redis forgets the job; for a
    submission none of whose jobs has ended yet, its marker in Redis."""
    from domain.errors import JobNotFound
    from domain.services import get_job

    marker = await _submission_marker(sources, job_id)
    async with sources.unit_of_work() as uow:
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


async def _with_retry_note(sources: Sources, outcome: Outcome) -> Outcome:
    """A job waiting for its next try is retrying: say after what, from the worker's note
    in Redis (written even when the database is what failed)."""
    if outcome.status != "deferred":
        return outcome
    from worker.runtime.outbox import read_retry_note

    retry = await read_retry_note(await sources.queue(), outcome.job_id)
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


async def _submission_marker(sources: Sources, parent_id: str) -> dict[str, Any] | None:
    """What ``mark_submission`` wrote; None when there is nothing, or nothing of ours."""
    from contextlib import suppress

    import orjson
    from redis.exceptions import ResponseError

    with suppress(ResponseError, orjson.JSONDecodeError):
        raw = await (await sources.queue()).get(SUBMISSION_PREFIX + parent_id)
        marker = orjson.loads(raw) if raw is not None else None
        if isinstance(marker, dict) and isinstance(marker.get("jobs", 0), int):
            return marker
    return None


async def mark_submission(
    sources: Sources, parent_id: str, function: str, job_ids: Sequence[str]
) -> None:
    """Remember, for as long as arq keeps the jobs, that ``parent_id`` became ``job_ids``."""
    import orjson

    queue = await sources.queue()
    marker = orjson.dumps({"function": function, "jobs": len(job_ids)})
    await queue.set(SUBMISSION_PREFIX + parent_id, marker, px=queue.expires_extra_ms)


# KEYS: the queue, then each job's result key; ARGV: the job ids. Per job: its result, 1
# while it is queued (or deferred, or running), 0 when Redis knows nothing of it, -1 when
# its result key holds something else than a string.
_RESULTS_SCRIPT = """
local replies = {}
for i = 1, #ARGV do
  local result = redis.pcall('get', KEYS[i + 1])
  if type(result) == 'table' then
    replies[i] = -1
  elseif result then
    replies[i] = result
  elseif redis.call('zscore', KEYS[1], ARGV[i]) then
    replies[i] = 1
  else
    replies[i] = 0
  end
end
return replies
"""


async def read_results(sources: Sources, job_ids: list[str]) -> dict[str, Outcome]:
    """The jobs among ``job_ids`` that have ended: all their results in one script call
    (a pipeline of a GET and a ZSCORE per job cost the CLI 1 s of CPU per 40 polls of a
    thousand jobs; the script, a tenth of that)."""
    from arq.constants import result_key_prefix

    from worker.serialization import UnreadableData, decoded_result

    queue = await sources.queue()
    script = queue.register_script(_RESULTS_SCRIPT)
    keys = [queue.default_queue_name, *(result_key_prefix + job_id for job_id in job_ids)]
    replies = await script(keys=keys, args=job_ids)
    found: dict[str, Outcome] = {}
    for job_id, reply in zip(job_ids, replies, strict=True):
        if isinstance(reply, bytes):
            found[job_id] = from_result(job_id, decoded_result(job_id, reply))
        elif reply == -1:
            raise UnreadableData(job_id, ValueError("not a string"), result=True)
        elif not reply:  # neither queued nor finished in Redis: ask the history
            outcome = await known_outcome(sources, job_id)
            if outcome.done:
                found[job_id] = outcome
    return found


def combined(job_id: str, function: str, outcomes: Sequence[Outcome]) -> Outcome:
    """Several jobs of one submission read as one: their counts added up as the history
    adds them up, failures listed."""
    from domain.views import add_up

    failures = [o for o in outcomes if o.status == "failed"]
    results = [o.result if isinstance(o.result, dict) else None for o in outcomes]
    run_ids = {result.get("run_id") for result in results if result} - {None}
    result = {**({"run_id": run_ids.pop()} if len(run_ids) == 1 else {}), **add_up(results)}
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
