"""The cron jobs that keep the data tidy. (The job history's listing, ``ListJobs``, lives
with its SQL in ``domain.history_queries``.)"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from domain.schemas.base import INT32_MAX, Payload

MAX_KEEP_DAYS = 36_500  # a bound a date can be computed from (and JSON can carry)


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
