"""Where a job stands: the read model the CLI (and any other face) shows.

From Redis while arq knows the job (queued, deferred, in_progress, or its result), with the
worker's retry note for a job waiting for its next try; from the job history once Redis has
forgotten it. A submission that became several jobs (a file's batches, a generation's
chunks) is read through its children, against the count its marker in Redis gives
(``worker.ops.submissions`` writes it). ``Outcome`` is what every face shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from worker.ops.job_notes import read_retry_note, read_submission_marker

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from arq.jobs import Job, JobResult

    from domain.history_queries import Statement
    from domain.uow import UnitOfWork
    from domain.views import Submission

FINAL = frozenset({"succeeded", "failed", "cancelled"})


class Sources(Protocol):
    """Where job state is read from: the queue's Redis and the database (its reads of SQL
    text, ``domain.history_queries`` and ``domain.progress_queries``, in ``read_rows``)."""

    async def queue(self) -> ArqRedis: ...

    async def job(self, job_id: str) -> Job: ...

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]: ...

    async def read_rows(self, statement: Statement) -> Sequence[Mapping[str, Any]]: ...


class UnknownJob(LookupError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} is unknown: not in Redis, not in the job history")


class JobFailure(BaseModel):
    """Why a job (or its last try) failed."""

    model_config = ConfigDict(frozen=True)

    type: str | None = Field(description="The error's type, e.g. ValidationError")
    message: str | None


class Outcome(BaseModel):
    """Where a job (or a submission) stands: the same fields for every job, on every face
    (``dbjobs status --json``, the API's answers)."""

    # Every field is in every answer: the API's schema says so (``required``).
    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)

    job_id: str
    function: str | None = Field(None, description="The job's name in the registry")
    state: str = Field(
        description="queued, deferred, in_progress or retrying while it waits or runs; "
        "succeeded, failed or cancelled once done"
    )
    source: Literal["redis", "history"] = Field(
        "redis", description="redis, or history once Redis has forgotten the job"
    )
    tries: int | None = Field(None, description="Tries so far, once one has ended")
    finished_at: str | None = Field(None, description="ISO 8601, once it has ended")
    next_retry_at: str | None = Field(None, description="ISO 8601, while it is retrying")
    error: JobFailure | None = Field(None, description="The failure, or the last try's error")
    children: dict[str, Any] | None = Field(
        None,
        description="For a submission of several jobs: how many (jobs), how many ended "
        "(recorded), by state (states), the failures, and the results added up (totals)",
    )
    result: Any = Field(None, description="What the job returned (for a submission: totals)")

    @classmethod
    def queued(cls, job_id: str, function: str | None) -> Outcome:
        return cls(job_id=job_id, state="queued", function=function)

    @property
    def done(self) -> bool:
        return self.state in FINAL

    def described_error(self) -> str:
        error = self.error or JobFailure(type=None, message=None)
        return f"{error.type}: {error.message}"

    def with_result(self, result: Any) -> Outcome:
        return self.model_copy(update={"result": result})

    def as_json(self, *, with_result: bool = True) -> dict[str, Any]:
        """The same fields for every job, every command: one contract for scripts."""
        return self.model_dump(exclude=None if with_result else {"result"})


def failure(error_type: str | None, message: str | None) -> JobFailure | None:
    """The error of a job, or None when it has none (no type: nothing failed)."""
    return None if error_type is None else JobFailure(type=error_type, message=message)


def from_result(job_id: str, info: JobResult) -> Outcome:
    from worker.serialization import JobError

    problem = info.result
    if info.success:
        error, result = None, info.result
    elif isinstance(problem, JobError):
        error, result = JobFailure(type=problem.type_name, message=problem.message), None
    else:
        error, result = JobFailure(type=type(problem).__name__, message=str(problem)), None
    aborted = error is not None and error.type == "CancelledError"  # arq's abort, only
    return Outcome(
        job_id=job_id,
        state="succeeded" if info.success else "cancelled" if aborted else "failed",
        function=info.function,
        tries=info.job_try,
        finished_at=info.finish_time.isoformat(),
        error=error,
        result=result,
    )


def generation_plan(result: Any) -> dict[str, Any] | None:
    """What a ``generate_profiles`` job returned when it planned a generation (its
    ``generation_id``, ``total`` and ``chunks``); None for any other result."""
    if isinstance(result, dict) and {"generation_id", "total", "chunks"} <= result.keys():
        return result
    return None


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
    outcome = Outcome(
        job_id=parent_id,
        state="in_progress",
        function=function,
        source="history",
        children=children,
    )
    if not finished:
        return outcome
    if states.get("failed"):
        first = children["failures"][0]
        message = (
            f"{states['failed']} of {children['recorded']} jobs failed; "
            f"first, {first['job_id']}: {first['error']}"
        )
        error = JobFailure(type="SubmissionFailed", message=message)
        return outcome.model_copy(update={"state": "failed", "error": error})
    return outcome.model_copy(update={"state": "succeeded", "result": children["totals"]})


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
    outcome = Outcome(job_id=job_id, state=status.value, function=function)
    return await _with_retry_note(sources, outcome)


async def known_outcome(sources: Sources, job_id: str, *, describe: bool = False) -> Outcome:
    """``current_outcome``, or ``UnknownJob`` when neither Redis nor the history knows it."""
    outcome = await current_outcome(sources, job_id, describe=describe)
    if outcome is None:
        raise UnknownJob(job_id)
    return outcome


async def _from_history(sources: Sources, job_id: str) -> Outcome | None:
    """The durable record in the job history, kept long after Redis forgets the job; for a
    submission none of whose jobs has ended yet, its marker in Redis. Read as SQL text
    (``domain.history_queries``, ``domain.progress_queries``): over asyncpg alone in the CLI."""
    from domain.history_queries import job_standing

    marker = await read_submission_marker(await sources.queue(), job_id)
    standing = await job_standing(sources.read_rows, job_id)
    # A generation's children are not added up: its progress as a whole takes their place
    # (worker.ops.following.with_generation).
    if standing is not None and standing["submission"] and not generation_plan(standing["result"]):
        return await _submission_from_history(sources, job_id, standing, marker)
    if standing is not None:
        return _from_standing(job_id, standing)
    if marker is None:
        return None
    children: dict[str, Any] = {
        "jobs": marker.get("jobs"),
        "recorded": 0,
        "states": {},
        "failures": [],
    }
    return Outcome(
        job_id=job_id, state="queued", function=marker.get("function"), children=children
    )


def _from_standing(job_id: str, standing: Mapping[str, Any]) -> Outcome:
    """``from_history`` of a job that is no submission: its record alone."""
    next_retry_at = standing["next_retry_at"]
    return Outcome(
        job_id=job_id,
        state=standing["state"],
        function=standing["function"],
        result=standing["result"],
        error=failure(standing["error_type"], standing["error_message"]),
        source="history",
        tries=standing["tries"],
        finished_at=standing["finished_at"].isoformat(),
        next_retry_at=next_retry_at.isoformat() if next_retry_at else None,
    )


async def _submission_from_history(
    sources: Sources, job_id: str, standing: Mapping[str, Any], marker: dict[str, Any] | None
) -> Outcome | None:
    """A submission's children added up, against the number of jobs its marker says it
    made; with its own record, when it has one."""
    from domain.progress_queries import submission_of

    children = _children(await submission_of(sources.read_rows, job_id), marker)
    if standing["state"] is not None:
        return _from_standing(job_id, standing).model_copy(update={"children": children})
    if children is None:  # its jobs were forgotten since the look that found them
        return None
    return _submission_outcome(job_id, children, marker)


async def _with_retry_note(sources: Sources, outcome: Outcome) -> Outcome:
    """A job waiting for its next try is retrying: say after what, from the worker's note
    in Redis (written even when the database is what failed)."""
    if outcome.state != "deferred":
        return outcome
    retry = await read_retry_note(await sources.queue(), outcome.job_id)
    if retry is None:
        return outcome
    update = {
        "state": "retrying",
        "tries": retry.get("tries"),
        "error": failure(retry.get("error_type"), retry.get("error_message")),
        "next_retry_at": retry.get("retry_at"),
    }
    return outcome.model_copy(update=update)
