"""What a metric read asks for: validated like a payload, never enqueued."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from domain.schemas import INT32_MAX, Id, MetricName, Payload, Step

# MLflow's figures, for scale: its UI asks for about 320 points a line, its bulk call
# compares up to 100 runs, and a page of its history holds up to 25,000 points.
DEFAULT_BUCKETS = 500
MAX_BUCKETS = 10_000
MAX_COMPARED_RUNS = 100
# run_ids × buckets in one read. A bucket costs the console about 2 KB while it is read and
# 150 bytes of answer: 100 runs × 10,000 buckets took 1.8 GB and 23 s (issue 18); 20,000
# take about 40 MB and, over a million points, 0.6 s. Two runs at full resolution fit, or
# 100 runs at 200 buckets: enough for a chart, one line a run.
MAX_HISTORY_BUCKETS = 20_000
DEFAULT_PAGE = 10_000
MAX_PAGE = 25_000


def default_buckets(runs: int) -> int:
    """DEFAULT_BUCKETS, or fewer when comparing so many runs that they would not fit."""
    return max(1, min(DEFAULT_BUCKETS, MAX_HISTORY_BUCKETS // max(1, runs)))


class MetricHistoryQuery(Payload):
    """A metric of one or several runs, downsampled to at most ``buckets`` buckets."""

    run_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_COMPARED_RUNS)]
    name: MetricName
    buckets: Annotated[int, Field(ge=1, le=MAX_BUCKETS)] = Field(
        DEFAULT_BUCKETS,
        description=f"Default {DEFAULT_BUCKETS}, fewer for many runs: run_ids × buckets is "
        f"at most {MAX_HISTORY_BUCKETS:,}.",
    )
    first_step: Step | None = Field(None, description="Only points from this step on.")
    last_step: Step | None = Field(None, description="Only points up to this step.")

    @model_validator(mode="before")
    @classmethod
    def _buckets_for_the_runs(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("buckets") is None:
            runs = data.get("run_ids")
            return data | {"buckets": default_buckets(len(runs) if isinstance(runs, list) else 1)}
        return data

    @field_validator("buckets")
    @classmethod
    def _few_enough_in_all(cls, buckets: int, info: ValidationInfo) -> int:
        """Checked on the buckets, so that the refusal names them, with the value to use."""
        runs = len(info.data.get("run_ids") or ())
        if runs * buckets > MAX_HISTORY_BUCKETS:
            raise ValueError(
                f"at most {MAX_HISTORY_BUCKETS // runs:,} for {runs} runs (run_ids × buckets "
                f"is at most {MAX_HISTORY_BUCKETS:,} in one read)"
            )
        return buckets

    @model_validator(mode="after")
    def _a_range(self) -> Self:
        if len(set(self.run_ids)) != len(self.run_ids):
            raise ValueError("run_ids: a run is named twice")
        first, last = self.first_step, self.last_step
        if first is not None and last is not None and first > last:
            raise ValueError("first_step is after last_step")
        return self


class MetricPageQuery(Payload):
    """One page of a run's metric, in step order, after a step (keyset paging)."""

    run_id: Id
    name: MetricName
    after_step: Annotated[int, Field(ge=-1, le=INT32_MAX)] = Field(
        -1, description="Only points after this step (-1: from the start)."
    )
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE
