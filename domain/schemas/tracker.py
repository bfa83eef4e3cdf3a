"""The experiment tracker's payloads: experiments, runs and their metric points."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    with_config,
)
from pydantic_core import InitErrorDetails
from typing_extensions import TypedDict

from domain.limits import DEFAULT_LATE_METRICS_SECONDS
from domain.schemas.base import (
    INT32_MAX,
    MAX_BATCH,
    MAX_UNKNOWN_FIELDS_NAMED,
    VALIDATION_CHUNK,
    Bio,
    Id,
    Name,
    Payload,
    few_unknown,
    shifted,
)

ExperimentStatus = Literal["created", "running", "completed", "failed"]
RunStatus = Literal["running", "completed", "failed"]
RunEnd = Literal["completed", "failed"]

MetricName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]+$"),
]
Step = Annotated[int, Field(ge=0, le=INT32_MAX)]
# NaN and +/-Inf are refused on purpose: JSON cannot carry them, and one NaN poisons every
# aggregate over a run. A diverged loss is reported by finishing the run as failed. So two
# values of a step are "the same" when they are equal as IEEE doubles (0.0 equals -0.0):
# a re-sent point is a duplicate, another value is a conflict.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
# What a metric job does with a point whose step already holds another value.
OnConflict = Literal["keep", "overwrite"]


class CreateExperiment(Payload):
    """Create an experiment (the result has its id)."""

    owner_id: Id = Field(description="Id of the owning profile.")
    name: Name = Field(description="Unique among the owner's experiments.")
    description: Bio = Field("", description="What it is about.")


class ListExperiments(Payload):
    owner_id: Id | None = None
    state: ExperimentStatus | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


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
            raise shifted(error, start, unchecked=len(value) - start - VALIDATION_CHUNK) from None
    return items


def _refuse_wide(points: list[Any]) -> None:
    """One error for each point with many unknown fields (``few_unknown``), before pydantic
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
            few_unknown(PointFields.__annotations__, point)
        except ValueError as problem:
            details.append(
                InitErrorDetails(
                    type="value_error", loc=(index,), input=point, ctx={"error": problem}
                )
            )
    if details:
        raise ValidationError.from_exception_data("points", details)


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
