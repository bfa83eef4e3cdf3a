"""What use cases return: plain, JSON-able snapshots, never live ORM objects."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class View(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


# Where a job, an experiment or a run stands, named ``state`` on every face; the tables'
# column (and a finish-run payload's field) keeps the name ``status``, read here too.
State = Annotated[str, Field(validation_alias=AliasChoices("state", "status"))]


class ProfileView(View):
    id: int
    username: str
    email: str
    full_name: str
    bio: str
    version: int
    created_at: datetime
    updated_at: datetime


class RunView(View):
    id: int
    experiment_id: int
    state: State
    seed: int | None
    started_at: datetime
    ended_at: datetime | None
    failure_reason: str | None = None


class ExperimentView(View):
    id: int
    owner_id: int
    name: str
    description: str
    state: State
    created_at: datetime


class ExperimentSummary(ExperimentView):
    run_count: int


class ExperimentDetail(ExperimentView):
    run_count: int  # all its runs; ``runs`` holds the newest of them
    runs: list[RunView]


class FinishedRun(View):
    run: RunView
    changed: bool


class MetricSummary(View):
    """One metric of a run: how many points, over which steps, and their values."""

    name: str
    points: int
    first_step: int
    last_step: int
    last: float  # the value at last_step
    min: float
    max: float


class RunSummary(RunView):
    points: int
    metric_count: int  # all its metrics; ``metrics`` holds the first of them by name
    metrics: list[MetricSummary]


class ExperimentRuns(ExperimentView):
    run_count: int  # all its runs; ``runs`` holds the newest of them
    runs: list[RunSummary]


class MetricBucket(View):
    """The points of one run whose steps fall in one bucket of the history's step range."""

    first_step: int
    last_step: int
    points: int
    min: float
    max: float
    mean: float
    last: float  # the value at last_step


class MetricSeries(View):
    run_id: int
    buckets: list[MetricBucket]


class MetricHistory(View):
    """A metric of several runs, downsampled: the step range, from the first point to the
    last of any run, is cut into ``buckets`` equal spans, the same for every run; a span
    holding none of a run's points has no bucket in its series."""

    name: str
    buckets: int
    first_step: int | None
    last_step: int | None
    series: list[MetricSeries]


class MetricPointView(View):
    step: int
    value: float
    recorded_at: datetime


class MetricPage(View):
    """Points in step order; ``next_after`` is the step to ask the next page after, None at
    the end."""

    run_id: int
    name: str
    points: list[MetricPointView]
    next_after: int | None


class GenerationPlan(View):
    generation_id: int
    key: str
    total: int
    chunk_size: int
    chunks: int


class ChunkOutcome(View):
    generation_id: int
    chunk_index: int
    inserted: int
    duplicate: bool


class GenerationStatus(View):
    generation_id: int
    total: int
    chunks: int
    chunks_done: int
    rows_done: int

    @property
    def done(self) -> bool:
        return self.chunks_done >= self.chunks


class TryView(View):
    try_number: int
    worker: str | None
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    error_type: str | None
    error_message: str | None
    retry_at: datetime | None


class FlowCount(View):
    """Jobs of one function that finished in one state within one time bucket."""

    start: int  # the bucket's start, seconds since the epoch
    function: str
    state: State
    jobs: int


class JobSummary(View):
    job_id: str
    function: str
    state: State
    parent_id: str | None
    tries: int
    error_type: str | None
    error_message: str | None
    finished_at: datetime


class JobHeader(JobSummary):
    """A job's record but its payload and result (up to 80 KiB together, and many times
    that as Python objects): what a list of many jobs carries. The job's own page has them."""

    duplicates: int
    retryable: bool | None
    worker: str | None
    started_at: datetime
    duration_ms: int
    next_retry_at: datetime | None
    handled_at: datetime | None


class JobView(JobHeader):
    payload: dict[str, Any] | None
    result: dict[str, Any] | None


class Submission(View):
    """The jobs a submission became (metric batches, generation chunks), by state."""

    parent_id: str
    states: dict[str, int]
    failures: list[JobSummary]
    totals: dict[str, Any]

    @property
    def recorded(self) -> int:
        return sum(self.states.values())


class JobDetail(View):
    """A job as the history knows it: its record and earlier tries, and its children."""

    job: JobView | None
    earlier_tries: list[TryView]
    children: Submission | None


class RetryPlan(View):
    function: str
    payload: dict[str, Any]
    attempt_id: str


class ConflictingPoint(View):
    """A point sent for a step that held another value: what was stored, what was sent."""

    name: str
    step: int
    stored: float
    sent: float


# Conflicting points named one by one in a result; the count says how many there were.
MAX_CONFLICTS_NAMED = 5


class MetricsRecorded(View):
    """``received`` = ``inserted`` + ``duplicates`` (the stored value, sent again) +
    ``conflicts`` (another value than the one stored); ``overwritten`` of the conflicts
    replaced the stored value (``on_conflict: overwrite``), the others left it as it was."""

    run_id: int
    received: int
    inserted: int
    duplicates: int
    conflicts: int
    overwritten: int
    conflicting: list[ConflictingPoint] = []


class StaleRunsFailed(View):
    run_ids: list[int]


class HistoryPruned(View):
    """Jobs forgotten (``deleted``), days of history dropped whole and made ahead, and
    the rows ``kept`` past their dropped day (unhandled failures, jobs still retrying)."""

    deleted: int
    cutoff: datetime
    days_dropped: int = 0
    days_made: int = 0
    kept: int = 0


def add_up(
    results: Iterable[dict[str, Any] | None], totals: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The counts in the children's results added up (points inserted, duplicates...), to
    ``totals`` if given (a sum read a page at a time); the conflicting points named, the
    first ``MAX_CONFLICTS_NAMED`` of them, as one batch's result names them."""
    totals = {} if totals is None else totals
    for result in results:
        for key, value in (result or {}).items():
            names_a_row = key == "id" or key.endswith(("_id", "_index"))
            if isinstance(value, int) and not isinstance(value, bool) and not names_a_row:
                totals[key] = totals.get(key, 0) + value
            elif key == "conflicting" and isinstance(value, list):
                named = totals.setdefault(key, [])
                named.extend(value[: MAX_CONFLICTS_NAMED - len(named)])
    return totals
