"""What the API answers, as models: its OpenAPI schema says exactly what comes back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from domain.views import JobHeader, JobSummary, JobView, Submission, TryView
from worker.ops.job_state import Outcome


class Refusal(BaseModel):
    type: str = Field(description="bad_input, unauthorized, forbidden, not_found, conflict...")
    message: str
    problems: list[str] | None = Field(None, description="For bad input: one per field")


class ErrorOut(BaseModel):
    error: Refusal


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        400: "The body cannot be read (not JSON, or not in its declared encoding), or the "
        "Host header names a host the console does not answer to (JOBS_CONSOLE_ALLOWED_HOSTS)",
        401: "The call changes state and JOBS_CONSOLE_TOKEN is set: send it as a Bearer token",
        403: "A request from another site",
        404: "Not found",
        408: "The body took longer than JOBS_CONSOLE_BODY_TIMEOUT to arrive",
        409: "Refused: the state of things does not allow it",
        413: "The body is larger than the console reads (JOBS_CONSOLE_MAX_BODY_BYTES)",
        422: "Bad input, each field and problem named; nothing was changed",
        503: "Redis or the database is unavailable",
    }.items()
}


class Enqueued(BaseModel):
    job: Outcome
    deduplicated: bool = Field(description="True: the job id already existed, nothing new")


class QueuedOut(BaseModel):
    enqueued_at: datetime
    payload: Any = Field(description="The job's arguments, as enqueued")


class JobPage(BaseModel):
    job: Outcome
    record: JobView | None = Field(description="The job history's record, once a try ended")
    earlier_tries: list[TryView]
    children: Submission | None
    queued: QueuedOut | None = Field(description="While Redis holds it: enqueue time, payload")


class JobList(BaseModel):
    jobs: list[JobSummary]
    next: str | None = Field(description="The next page's cursor (?before=), if any")


class Children(BaseModel):
    submission: Submission | None
    jobs: list[JobSummary]


class Handled(BaseModel):
    handled: int


class Cancelled(BaseModel):
    job_id: str
    state: str


class Failed(BaseModel):
    failed: list[JobHeader] = Field(description="Without payloads and results: see each job")


class RunningJobOut(BaseModel):
    job_id: str
    function: str | None
    worker: str | None
    started_at: datetime | None
    age_seconds: float | None
    orphaned: bool = Field(
        False,
        description="Its worker is late or lost: it returns to the queue when its lease lapses",
    )


class WorkerOut(BaseModel):
    worker_id: str
    queue_name: str
    state: str = Field(
        description="starting, ready, stopping as it says; late after a missed heartbeat; "
        "lost after three, until dismissed or it beats again"
    )
    running: int | None = Field(description="None for a lost worker")
    started_at: datetime | None
    beat_at: datetime
    seconds_since_beat: float


class QuarantinedOut(BaseModel):
    entry: str = Field(description="The job id (bytes that are not UTF-8 as \\xff), or the key")
    entry_hex: str = Field(description="The id's bytes exactly, when it is not UTF-8 text")
    reason: str = Field(description="bad_id, wrong_type or shared_key")
    detail: str
    at: str
    worker: str


class SubmissionOut(BaseModel):
    parent_id: str
    function: str | None
    jobs: int = Field(description="Jobs the submission became (a generation's chunks)")
    done: int = Field(description="Of those, ended (no longer in the queue)")
    queued: int = Field(description="Of those, in the queue: waiting or running")
    running: int


class GenerationOut(BaseModel):
    generation_id: int
    total: int = Field(description="Profiles to generate")
    chunks: int
    chunks_done: int
    rows_done: int


class QueueOverview(BaseModel):
    total: int = Field(description="Jobs in the queue: waiting, running and deferred")
    ready: int = Field(description="Due now: waiting and running")
    waiting: int = Field(description="Due now and not running: waiting for a worker")
    deferred: int
    waiting_by_function: dict[str, int]
    sampled: int = Field(description="Entries the per-function counts were read from")
    unreadable: int = Field(
        description="Entries of those that could not be read (a worker quarantines them)"
    )
    quarantined: int = Field(description="Records in the queue's quarantine (the latest 1,000)")
    quarantine: list[QuarantinedOut] = Field(description="The latest records, newest first")
    running: list[RunningJobOut]
    workers: list[WorkerOut]
    submissions: list[SubmissionOut] = Field(
        description="Submissions in progress (a file's batches), from the queue's head"
    )
    generations: list[GenerationOut] = Field(
        description="Generations with chunks in the queue, as far as the history has them"
    )
    last_minute: dict[str, int] = Field(description="Jobs ended by state, last 60 s")
    last_hour: dict[str, int] = Field(description="Jobs ended by state, last hour")
    unhandled_failures_last_hour: int = Field(
        description="Failures of the last hour nobody has marked handled or retried"
    )
    jobs_per_second: float = Field(description="Over the last minute")


# PostgreSQL refuses NUL in text: no job id in the history holds one.
NO_NUL = r"^[^\x00]+$"
JobId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetryRequest(Request):
    job_id: JobId
    force: bool = Field(False, description="Retry even a failure a retry will not change")


class CancelRequest(Request):
    job_id: JobId


class DismissRequest(Request):
    worker_id: Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=NO_NUL)]


class Dismissed(BaseModel):
    worker_id: str
    dismissed: bool = Field(description="False: not listed, or still beating (late)")


class HandleRequest(Request):
    job_ids: list[JobId] | None = Field(None, min_length=1, max_length=1000)
    all: bool = Field(False, description="Every unhandled failure")

    @model_validator(mode="after")
    def _one_choice(self) -> Self:
        if (self.job_ids is None) == (not self.all):
            raise ValueError("give either job_ids or all: true")
        return self

    @property
    def chosen(self) -> list[str] | None:
        return None if self.all else self.job_ids


class LiveJobOut(BaseModel):
    """A job on the queue: waiting (queued, deferred) or running."""

    job_id: str
    lane: str = Field(description="The lane it waits in: interactive, maintenance or bulk")
    function: str | None
    state: str = Field(description="queued, deferred (due later) or running")
    enqueued_at: datetime | None
    due_at: datetime = Field(description="When a worker may take it")
    worker: str | None = Field(description="Running: the worker holding its lease")
    started_at: datetime | None
    payload_preview: str = Field(description="The start of its arguments as JSON, bounded")


class LiveJobs(BaseModel):
    jobs: list[LiveJobOut]
    next: int | None = Field(description="The `start` of the next page; null on the last")
