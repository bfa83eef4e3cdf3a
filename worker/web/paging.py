"""Keyset pages of the job history: a cursor names the last job of a page (when it ended,
and its id), and the next page starts after it, on the same index as the first. An offset
would make the millionth row cost a million."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
from fastapi import HTTPException
from pydantic import ValidationError

from domain.schemas import ListJobs
from domain.views import JobSummary
from worker.web.errors import PayloadRefused


def cursor_of(job: JobSummary) -> str:
    raw = orjson.dumps([job.finished_at.isoformat(), job.job_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def next_cursor(jobs: Sequence[JobSummary], limit: int) -> str | None:
    return cursor_of(jobs[-1]) if len(jobs) >= limit else None


def _read(cursor: str) -> tuple[datetime, str]:
    """The cursor's time and job id; anything a page could not have given is a 422 (a time
    without a zone or out of range once in UTC, a NUL that PostgreSQL refuses)."""
    try:
        finished_at, job_id = orjson.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        moment = datetime.fromisoformat(finished_at)
        if moment.tzinfo is None or not isinstance(job_id, str) or "\x00" in job_id:
            raise ValueError(cursor)
        return moment.astimezone(UTC), job_id
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError):
        raise HTTPException(422, "before: not a page cursor (use the one a page gave)") from None


def jobs_query(
    *, state: str | None, function: str | None, limit: int, before: str | None
) -> ListJobs:
    raw: dict[str, object] = {"state": state, "function": function, "limit": limit}
    if before:
        raw["before_finished_at"], raw["before_job_id"] = _read(before)
    try:
        return ListJobs.model_validate(raw)
    except ValidationError as problem:
        raise PayloadRefused(problem) from None
