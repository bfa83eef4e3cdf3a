"""The job history's reads: one job, its tries and children (a submission's added up by
``domain.progress_queries``), counts, the flow of finished jobs, and the lists
(``domain.history_queries``, run here through the session). Each reads an index
(tests/integration/test_history_indexes.py proves it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlalchemy.sql.elements import BindParameter

from domain.db import UTCDateTime
from domain.history_queries import (
    TIMES,
    UNHANDLED_FAILURE,
    Statement,
    recent_jobs,
    unhandled_failures,
)
from domain.models import JobRecord, JobTry
from domain.progress_queries import submission_of
from domain.views import JobHeader, JobSummary, Submission

# The partial index's own text, literals and all: a plan of "status = $1" cannot use the
# index, and PostgreSQL may reuse such a generic plan for a prepared statement.
UNHANDLED_FAILURE_SQL = text(UNHANDLED_FAILURE)


# A submission's jobs leave out the two columns that can be large, as the lists do
# (domain.history_queries). Touching them on a row loaded so raises instead of querying.
_HEADERS_ONLY = (defer(JobRecord.payload, raiseload=True), defer(JobRecord.result, raiseload=True))


def _children(parent_id: str, status: str) -> tuple[ColumnElement[bool], ...]:
    return JobRecord.parent_id == parent_id, JobRecord.status == inlined(status)


def inlined(value: str) -> BindParameter[str]:
    """A filter value written into the SQL, for a column of few, unevenly spread values
    (status, function): a prepared statement's generic plan, made without the value, can
    pick the finished_at index and walk every row looking for a rare one."""
    return literal(value, literal_execute=True)


class HistoryReads:
    """The reads of ``JobRecordRepository``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, job_id: str) -> JobRecord | None:
        """The job's record: one per job id (``recorded_enqueue_time``), whatever its day."""
        return await self.session.scalar(select(JobRecord).where(JobRecord.job_id == job_id))

    async def tries_of(self, job_id: str) -> list[JobTry]:
        order = (JobTry.enqueued_at, JobTry.try_number)
        statement = select(JobTry).where(JobTry.job_id == job_id).order_by(*order)
        return list((await self.session.scalars(statement)).all())

    async def children_of(self, parent_id: str, *, status: str, limit: int) -> list[JobRecord]:
        """A submission's jobs in one state, oldest first, read in order from the
        (parent_id, status, finished_at) index. Without the state, PostgreSQL may walk the
        finished_at index from the oldest job of all, looking for the submission's.
        Without their payloads and results (``_HEADERS_ONLY``)."""
        statement = (
            select(JobRecord)
            .options(*_HEADERS_ONLY)
            .where(*_children(parent_id, status))
            .order_by(JobRecord.finished_at)
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())

    async def submission(self, parent_id: str) -> Submission | None:
        """How far a submission's jobs got (``domain.progress_queries``)."""
        return await submission_of(self.rows, parent_id)

    async def list_recent(
        self,
        *,
        status: str | None,
        function: str | None,
        limit: int,
        before: tuple[datetime, str] | None = None,
    ) -> list[JobSummary]:
        """Newest first (``domain.history_queries.recent_statement``)."""
        return await recent_jobs(
            self.rows, state=status, function=function, limit=limit, before=before
        )

    async def count_since(self, cutoff: datetime) -> dict[str, int]:
        """How many jobs ended in each state since ``cutoff``: a range of the finished_at
        index, so it costs what the last hour holds, not the whole history."""
        statement = (
            select(JobRecord.status, func.count())
            .where(JobRecord.finished_at >= cutoff)
            .group_by(JobRecord.status)
        )
        return {status: int(n) for status, n in (await self.session.execute(statement)).all()}

    async def finished_per_bucket(
        self, since: datetime, bucket_seconds: int
    ) -> list[tuple[int, str, str, int]]:
        """The flow of finished jobs (``domain.repositories.job_flow``)."""
        from domain.repositories.job_flow import finished_per_bucket

        return await finished_per_bucket(self.session, since, bucket_seconds)

    async def count_unhandled_failed_since(self, cutoff: datetime) -> int:
        """Failures since ``cutoff`` nobody has marked handled (the partial index of them)."""
        statement = (
            select(func.count())
            .select_from(JobRecord)
            .where(UNHANDLED_FAILURE_SQL, JobRecord.finished_at >= cutoff)
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def list_failed(self, limit: int) -> list[JobHeader]:
        """Failures nobody has marked handled, newest first, without payloads and results."""
        return await unhandled_failures(self.rows, limit)

    async def rows(self, statement: Statement) -> Sequence[Mapping[str, Any]]:
        return await statement_rows(self.session, statement)


async def statement_rows(
    session: AsyncSession, statement: Statement
) -> Sequence[Mapping[str, Any]]:
    """A statement of SQL text (``domain.history_queries``, ``domain.progress_queries``) in
    ``session``: its inlined values written into the SQL as literals, its times read and
    written as UTC on SQLite too."""
    values = [
        bindparam(
            name,
            value,
            type_=UTCDateTime() if isinstance(value, datetime) else None,
            literal_execute=name in statement.inlined,
        )
        for name, value in statement.params.items()
    ]
    times = {name: UTCDateTime() for name in TIMES if name in statement.sql}
    clause = text(statement.sql).bindparams(*values).columns(**times)
    return [dict(row) for row in (await session.execute(clause)).mappings()]
