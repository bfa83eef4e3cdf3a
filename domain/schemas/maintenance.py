"""The job history's listing and the cron jobs that keep the data tidy."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from domain.schemas.base import INT32_MAX, Payload

MAX_KEEP_DAYS = 36_500  # a bound a date can be computed from (and JSON can carry)

# A job's state in the history; queued, deferred and in_progress are Redis's to say.
JobState = Literal["retrying", "succeeded", "failed", "cancelled"]


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
