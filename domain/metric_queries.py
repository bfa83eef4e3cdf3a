"""What a metric read asks for: validated like a payload, never enqueued."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from domain.schemas import INT32_MAX, Id, MetricName, Payload, Step

# MLflow's figures, for scale: its UI asks for about 320 points a line, its bulk call
# compares up to 100 runs, and a page of its history holds up to 25,000 points.
DEFAULT_BUCKETS = 500
MAX_BUCKETS = 10_000
MAX_COMPARED_RUNS = 100
DEFAULT_PAGE = 10_000
MAX_PAGE = 25_000


class MetricHistoryQuery(Payload):
    """A metric of one or several runs, downsampled to at most ``buckets`` buckets."""

    run_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_COMPARED_RUNS)]
    name: MetricName
    buckets: Annotated[int, Field(ge=1, le=MAX_BUCKETS)] = DEFAULT_BUCKETS
    first_step: Step | None = Field(None, description="Only points from this step on.")
    last_step: Step | None = Field(None, description="Only points up to this step.")

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
