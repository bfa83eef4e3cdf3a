"""Payloads of the use cases: validated at the edge, before anything touches the database."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
    with_config,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from typing_extensions import TypedDict

MAX_GENERATE = 10_000_000
# A generation's chunk jobs: each holds at least MIN_CHUNK_SIZE profiles (the worker's own
# default obeys the same bounds), and there are at most MAX_CHUNKS of them. 30,000 chunks
# of one profile once took 95 s to plan and 17 MB of Redis.
MIN_CHUNK_SIZE = 100
MAX_CHUNK_SIZE = 50_000
MAX_CHUNKS = 1000
MAX_BATCH = 50_000
# Bounds on how much a bad payload can make validation report (and so allocate): a payload
# of 50,000 points with 168 unknown keys each once made 8.4 million errors and 3.5 GB.
MAX_UNKNOWN_FIELDS_NAMED = 10
VALIDATION_CHUNK = 1000
INT32_MAX = 2_147_483_647
MAX_KEEP_DAYS = 36_500  # a bound a date can be computed from (and JSON can carry)

ExperimentStatus = Literal["created", "running", "completed", "failed"]
RunStatus = Literal["running", "completed", "failed"]
RunEnd = Literal["completed", "failed"]
# A job's state in the history; queued, deferred and in_progress are Redis's to say.
JobState = Literal["retrying", "succeeded", "failed", "cancelled"]

GENERATED_USERNAME = re.compile(r"\.g\d+n\d+$")
GENERATED_EMAIL = re.compile(r"\.g\d+n\d+@")


def _not_generated(username: str) -> str:
    if GENERATED_USERNAME.search(username):
        raise ValueError("the suffix .g<N>n<M> is reserved for generated profiles")
    return username


def _not_generated_email(email: str) -> str:
    # A taken generated email would make its generation's chunk fail on every re-run.
    if GENERATED_EMAIL.search(email):
        raise ValueError("the suffix .g<N>n<M> before '@' is reserved for generated profiles")
    return email


Username = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$"
    ),
    AfterValidator(_not_generated),
]
Email = Annotated[EmailStr, AfterValidator(_not_generated_email)]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Bio = Annotated[str, StringConstraints(max_length=2000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MetricName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]+$"),
]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Step = Annotated[int, Field(ge=0, le=INT32_MAX)]
# NaN and +/-Inf are refused on purpose: JSON cannot carry them, and one NaN poisons every
# aggregate over a run. A diverged loss is reported by finishing the run as failed. So two
# values of a step are "the same" when they are equal as IEEE doubles (0.0 equals -0.0):
# a re-sent point is a duplicate, another value is a conflict.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
# What a metric job does with a point whose step already holds another value.
OnConflict = Literal["keep", "overwrite"]
# Points buffered by a client may land a little after its run ended; later ones are refused.
DEFAULT_LATE_METRICS_SECONDS = 300


def _few_unknown(known: Collection[str], data: Any) -> Any:
    """Many unknown fields make one error, not one each (a few are named one by one)."""
    if isinstance(data, dict) and len(data) > len(known) + MAX_UNKNOWN_FIELDS_NAMED:
        unknown = [key for key in data if key not in known]
        if len(unknown) > MAX_UNKNOWN_FIELDS_NAMED:
            named = ", ".join(str(key)[:40] for key in unknown[:MAX_UNKNOWN_FIELDS_NAMED])
            more = len(unknown) - MAX_UNKNOWN_FIELDS_NAMED
            raise ValueError(f"{len(unknown):,} unknown fields: {named} and {more:,} more")
    return data


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=100_000)

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        # __pydantic_fields__, not model_fields: pydantic's property costs 1.4 us a call.
        return _few_unknown(cls.__pydantic_fields__, data)


def _in_chunks(value: Any, validate: ValidatorFunctionWrapHandler) -> Any:
    """Validate a list of points a chunk at a time, stopping at the first chunk with a
    problem; a point with many unknown fields makes one error (``_refuse_wide``).

    A list over its length limit goes straight to ``validate``, which refuses it before
    looking at any item.
    """
    if not isinstance(value, list) or len(value) > MAX_BATCH:
        return validate(value)
    items: list[Any] = []
    for start in range(0, max(len(value), 1), VALIDATION_CHUNK):
        chunk = value[start : start + VALIDATION_CHUNK]
        try:
            _refuse_wide(chunk)
            items += validate(chunk)
        except ValidationError as error:
            raise _shifted(error, start, unchecked=len(value) - start - VALIDATION_CHUNK) from None
    return items


def _refuse_wide(points: list[Any]) -> None:
    """One error for each point with many unknown fields (``_few_unknown``), before pydantic
    makes one per field; the other points of the chunk are then not checked.

    One pass over the points' sizes in C when none is that wide: a validator run per point
    cost the worker 0.5 ms per 1,000 points, a third of their validation."""
    try:
        if max(map(len, points), default=0) <= _WIDE_POINT:
            return
    except TypeError:  # a point without a size (a number): looked at one by one
        pass
    details = []
    for index, point in enumerate(points):
        try:
            _few_unknown(PointFields.__annotations__, point)
        except ValueError as problem:
            details.append(
                InitErrorDetails(
                    type="value_error", loc=(index,), input=point, ctx={"error": problem}
                )
            )
    if details:
        raise ValidationError.from_exception_data("points", details)


def _shifted(error: ValidationError, offset: int, *, unchecked: int) -> ValidationError:
    """The chunk's errors, with item indexes counted from the start of the whole list."""
    details = [
        InitErrorDetails(
            type=item["type"],
            loc=(offset + int(item["loc"][0]), *item["loc"][1:]) if item["loc"] else (),
            input=item["input"],
            ctx=item.get("ctx", {}),
        )
        for item in error.errors(include_url=False)
    ]
    if unchecked > 0:
        stopped = PydanticCustomError("not_checked", f"this and {unchecked - 1:,} more not checked")
        details.append(InitErrorDetails(type=stopped, loc=(offset + VALIDATION_CHUNK,), input=None))
    return ValidationError.from_exception_data(error.title, details)


class CreateProfile(Payload):
    """Create a profile (the result has its id)."""

    username: Username = Field(description="3-64 characters: letters, digits, _ . -")
    email: Email = Field(description="A valid e-mail address.")
    full_name: FullName = Field(description="The person's name.")
    bio: Bio = Field("", description="A short text.")


READ_ONLY_PROFILE_FIELDS = frozenset({"id", "created_at", "updated_at", "version"})


class ProfileChanges(Payload):
    """A partial update: only the fields given are changed."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_read_only(cls, data: object) -> object:
        if isinstance(data, dict):
            read_only = sorted(READ_ONLY_PROFILE_FIELDS & data.keys())
            if read_only:
                raise ValueError(f"read-only field(s) cannot be set: {', '.join(read_only)}")
            if not data:
                raise ValueError("no field to change")
            nulls = sorted(field for field, value in data.items() if value is None)
            if nulls:
                raise ValueError(f"null given for {', '.join(nulls)}: omit a field to keep it")
        return data

    username: Username | None = None
    email: Email | None = None
    full_name: FullName | None = None
    bio: Bio | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class UpdateProfile(Payload):
    """Change fields of a profile."""

    profile_id: Id = Field(description="The profile to change.")
    changes: ProfileChanges
    expected_version: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = Field(
        None, description="Refuse the change unless the profile is at this version."
    )


class GenerateProfiles(Payload):
    """Generate fake profiles, in chunk jobs that are each idempotent."""

    count: Annotated[int, Field(ge=1, le=MAX_GENERATE)] = Field(
        description="How many profiles to generate."
    )
    seed: Annotated[int, Field(ge=0, le=INT32_MAX)] = Field(0, description="Seed of the fake data.")
    chunk_size: Annotated[int, Field(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)] = Field(
        5_000, description="Profiles per chunk job (default: the worker's setting)."
    )
    # The same key always means the same generation, so a re-delivered request adds nothing.
    key: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        default_factory=lambda: uuid.uuid4().hex
    )

    @field_validator("chunk_size")
    @classmethod
    def _few_enough_chunks(cls, chunk_size: int, info: ValidationInfo) -> int:
        """Checked on the chunk size, so that the refusal names it, with the value to use."""
        count = info.data.get("count")
        if count is not None and chunk_count(count, chunk_size) > MAX_CHUNKS:
            raise ValueError(
                f"at least {smallest_chunk_size(count):,} for {count:,} profiles "
                f"(a generation makes at most {MAX_CHUNKS:,} chunk jobs)"
            )
        return chunk_size


def chunk_count(count: int, chunk_size: int) -> int:
    return -(-count // chunk_size)


def smallest_chunk_size(count: int) -> int:
    """The smallest chunk size that splits ``count`` profiles into at most MAX_CHUNKS."""
    return max(MIN_CHUNK_SIZE, chunk_count(count, MAX_CHUNKS))


class GenerateChunk(Payload):
    """Insert one chunk of a generation (enqueued by generate_profiles)."""

    generation_id: Id
    chunk_index: Annotated[int, Field(ge=0, lt=MAX_CHUNKS)]


# A prefix to match: any text (LIKE's wildcards in it are matched literally) but NUL.
Prefix = Annotated[str, StringConstraints(min_length=1, max_length=254, pattern=r"^[^\x00]+$")]


class ListProfiles(Payload):
    """The newest profiles, those whose username and email start with the prefixes given."""

    username: Prefix | None = Field(None, description="Only usernames that start with this.")
    email: Prefix | None = Field(None, description="Only emails that start with this.")
    limit: Annotated[int, Field(ge=1, le=1000)] = 20


class CreateExperiment(Payload):
    """Create an experiment (the result has its id)."""

    owner_id: Id = Field(description="Id of the owning profile.")
    name: Name = Field(description="Unique among the owner's experiments.")
    description: Bio = Field("", description="What it is about.")


class ListExperiments(Payload):
    owner_id: Id | None = None
    status: ExperimentStatus | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class ListJobs(Payload):
    status: JobState | None = None
    function: (
        Annotated[str, StringConstraints(max_length=100, pattern=r"^[A-Za-z0-9_:.\-]+$")] | None
    ) = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 20
    # A page's cursor: the jobs that ended before this one (newest first), both or neither.
    before_finished_at: AwareDatetime | None = None
    before_job_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _whole_cursor(self) -> ListJobs:
        if (self.before_finished_at is None) != (self.before_job_id is None):
            raise ValueError("a page cursor needs both before_finished_at and before_job_id")
        return self

    @property
    def before(self) -> tuple[datetime, str] | None:
        if self.before_finished_at is None or self.before_job_id is None:
            return None
        return self.before_finished_at, self.before_job_id


class StartRun(Payload):
    """Start a run (the result has its id)."""

    experiment_id: Id = Field(description="The experiment to run.")
    seed: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = Field(
        None, description="The run's seed, kept with it."
    )


class FinishRun(Payload):
    """End a run as completed or failed."""

    run_id: Id = Field(description="The run to end.")
    status: RunEnd = Field(description="How it ended.")
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        None, description="Why (for a failed run)."
    )


class MetricPoint(Payload):
    name: MetricName = Field(description="Metric name, e.g. loss.")
    step: Step = Field(description="Step number (0 or more).")
    value: FiniteFloat = Field(description="A finite number.")
    recorded_at: AwareDatetime | None = Field(
        None, description="ISO 8601 time with a zone (default: now)."
    )


@with_config(ConfigDict(extra="forbid", str_max_length=100_000))
class PointFields(TypedDict):
    """A point of a batch: MetricPoint's fields and checks, validated into a plain dict.

    A batch's points are not models: building 1,000 frozen MetricPoint instances cost the
    worker 2.2 ms of CPU, checking them as a TypedDict 0.5 ms.
    """

    name: MetricName
    step: Step
    value: FiniteFloat
    recorded_at: NotRequired[AwareDatetime | None]


# A point that may name more unknown fields than a point has fields and the refusal names.
_WIDE_POINT = len(PointFields.__annotations__) + MAX_UNKNOWN_FIELDS_NAMED


# Both metric jobs take these two, after their points.
ConflictPolicy = Annotated[
    OnConflict,
    Field(
        description="A step that already holds another value: keep it (the default; the "
        "point is counted as a conflict) or overwrite it (counted as conflict and overwritten)."
    ),
]
LateSeconds = Annotated[
    int,
    Field(
        ge=0,
        le=INT32_MAX,
        description="Accept points this long after the run ended "
        "(default: JOBS_LATE_METRICS_SECONDS).",
    ),
]


class RecordMetric(MetricPoint):
    """Record one metric point of a run."""

    run_id: Id = Field(description="The run.")
    on_conflict: ConflictPolicy = "keep"
    late_seconds: LateSeconds = DEFAULT_LATE_METRICS_SECONDS


class RecordMetrics(Payload):
    """Record a batch of metric points of a run."""

    run_id: Id = Field(description="The run.")
    points: Annotated[
        list[PointFields], Field(min_length=1, max_length=MAX_BATCH), WrapValidator(_in_chunks)
    ]
    on_conflict: ConflictPolicy = "keep"
    late_seconds: LateSeconds = DEFAULT_LATE_METRICS_SECONDS


class FailStaleRuns(Payload):
    """Fail runs that had no metric for longer than an idle window (a cron job)."""

    idle_seconds: Annotated[int, Field(ge=1, le=INT32_MAX)] = Field(
        description="Idle window (default: JOBS_STALE_RUN_SECONDS)."
    )


class PruneJobHistory(Payload):
    """Forget jobs older than a number of days, but failures nobody handled (a cron job)."""

    keep_days: Annotated[int, Field(ge=1, le=MAX_KEEP_DAYS)] = Field(
        description="Days of history to keep (default: JOBS_JOB_HISTORY_DAYS)."
    )
