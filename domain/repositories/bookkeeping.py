from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlalchemy.sql.elements import BindParameter

from domain.db import sqlstate, utcnow
from domain.models import GenerationChunk, JobRecord, JobTry, ProfileGeneration
from domain.models.bookkeeping import UNHANDLED_FAILURE
from domain.repositories import history_partitions
from domain.repositories._sql import dialect_insert, dialect_of, insert_for
from domain.repositories.history_partitions import Forgotten, day_of

_LEDGER_COLUMNS = (
    "job_id",
    "function",
    "status",
    "parent_id",
    "tries",
    "started_at",
    "finished_at",
    "duration_ms",
    "worker",
    "error_type",
    "error_message",
    "retryable",
    "payload",
    "result",
    "next_retry_at",
)


# The partial index's own text, literals and all: a plan of "status = $1" cannot use the
# index, and PostgreSQL may reuse such a generic plan for a prepared statement.
_UNHANDLED_FAILURE = text(UNHANDLED_FAILURE)
# PostgreSQL's unique_violation; SQLite's driver names no SQLSTATE, and its only
# IntegrityError an insert of valid values can meet here is the primary key.
_UNIQUE_VIOLATIONS = ("23505", None)


# Lists of jobs leave out the two columns that can be large (a payload up to 64 KiB, a
# result up to 16 KiB; as Python objects, many times that): a page of 1,000 such failures
# took 1.7 GB to list. Touching them on a row loaded so raises instead of querying.
_HEADERS_ONLY = (defer(JobRecord.payload, raiseload=True), defer(JobRecord.result, raiseload=True))
RESULTS_PAGE = 500


def _children(parent_id: str, status: str) -> tuple[ColumnElement[bool], ...]:
    return JobRecord.parent_id == parent_id, JobRecord.status == _inlined(status)


def _inlined(value: str) -> BindParameter[str]:
    """A filter value written into the SQL, for a column of few, unevenly spread values
    (status, function): a prepared statement's generic plan, made without the value, can
    pick the finished_at index and walk every row looking for a rare one."""
    return literal(value, literal_execute=True)


_KEY = ["job_id", "enqueued_at"]


def _enqueued_at() -> Any:
    """The job's partition key: the one it was first recorded under, whatever this
    delivery carries (a job id enqueued again once Redis forgot it has a later time),
    else the time this delivery carries. Found by the key's leading column, in every day."""
    recorded = (
        select(JobRecord.enqueued_at)
        .where(JobRecord.job_id == bindparam("job_id"))
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(recorded, bindparam("enqueued_at", type_=JobRecord.enqueued_at.type))


@cache
def _ledger_insert(dialect: str) -> Any:
    """The ledger's first record of a job: a plain INSERT. An upsert inserts speculatively
    (48 more bytes of WAL per job, and a probe of the primary key before the insert's own);
    a first try rarely finds a row, and when it does the unique key refuses it."""
    return dialect_insert(dialect, JobRecord.__table__).values(
        {**{column: bindparam(column) for column in _LEDGER_COLUMNS}, "enqueued_at": _enqueued_at()}
    )


@cache
def _ledger_upsert(dialect: str) -> Any:
    """The ledger's upsert, built once per dialect: every job runs it, and building it per
    call made SQLAlchemy rebuild its cache key (a walk over every value) every time."""
    table = JobRecord.__table__
    insert = dialect_insert(dialect, table).values(
        {**{column: bindparam(column) for column in _LEDGER_COLUMNS}, "enqueued_at": _enqueued_at()}
    )
    # A failed or retrying job may run again and succeed; a success is never overwritten.
    return insert.on_conflict_do_update(
        index_elements=_KEY,
        set_={column: insert.excluded[column] for column in _LEDGER_COLUMNS[1:]},
        where=table.c.status != "succeeded",
    ).returning(table.c.enqueued_at)


@dataclass(frozen=True)
class JobStamp:
    """Who is doing the work: the delivery's job id, function, try, worker and parent."""

    job_id: str
    function: str
    tries: int
    started_at: datetime
    worker: str | None = None
    parent_id: str | None = None
    payload: dict[str, Any] | None = None  # as the history keeps it (bounded by the worker)
    # When the producer enqueued it (the history's partition key). Unknown, its start's day
    # stands in: concurrent deliveries of the job still share one key, so one commits.
    enqueued_at: datetime | None = None
    # No ledger row is expected (a first try): its success is inserted, not upserted, and
    # a row found there raises ``LedgerRowExists`` instead.
    first_record: bool = False


class LedgerRowExists(Exception):
    """A first record met a row of the same job: the transaction is lost; run the unit of
    work again against that row (``JobStamp.first_record`` false)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} already has a row in the job history")


@dataclass(frozen=True)
class GenerationProgress:
    chunks_done: int
    rows_done: int


class GenerationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_or_create(
        self, *, key: str, seed: int, total: int, chunk_size: int
    ) -> ProfileGeneration:
        statement = (
            insert_for(self.session, ProfileGeneration)
            .values(key=key, seed=seed, total=total, chunk_size=chunk_size)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        await self.session.execute(statement)
        found = await self.session.scalar(
            select(ProfileGeneration).where(ProfileGeneration.key == key)
        )
        assert found is not None  # inserted or already there, in this very transaction
        return found

    async def get(self, generation_id: int) -> ProfileGeneration | None:
        return await self.session.get(ProfileGeneration, generation_id)

    async def claim_chunk(self, generation_id: int, chunk_index: int, rows: int) -> bool:
        """Take the chunk's idempotency key; False when an earlier run already committed it.

        A concurrent run of the same chunk blocks on the key until the first commits (then
        sees it taken) or rolls back (then takes it).
        """
        statement = (
            insert_for(self.session, GenerationChunk)
            .values(generation_id=generation_id, chunk_index=chunk_index, rows_inserted=rows)
            .on_conflict_do_nothing(index_elements=["generation_id", "chunk_index"])
            .returning(GenerationChunk.chunk_index)
        )
        return (await self.session.execute(statement)).first() is not None

    async def progress(self, generation_id: int) -> GenerationProgress:
        statement = select(
            func.count(), func.coalesce(func.sum(GenerationChunk.rows_inserted), 0)
        ).where(GenerationChunk.generation_id == generation_id)
        chunks, rows = (await self.session.execute(statement)).one()
        return GenerationProgress(chunks_done=int(chunks), rows_done=int(rows))


class JobRecordRepository:
    """The durable job history, and the last line of exactly-once effects."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_success(
        self,
        stamp: JobStamp,
        *,
        result: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> bool:
        """Record a success in the effect's transaction; False when the job already succeeded.

        A ``first_record`` stamp is inserted: ``LedgerRowExists`` if any row of the job is
        there (its transaction is then lost)."""
        if not stamp.first_record:
            recorded = await self._upsert(stamp, status="succeeded", result=result, payload=payload)
            return recorded is not None
        values = _ledger_values(stamp, status="succeeded", result=result, payload=payload)
        try:
            await self.session.execute(_ledger_insert(dialect_of(self.session)), values)
        except IntegrityError as error:
            if sqlstate(error) not in _UNIQUE_VIOLATIONS:
                raise
            raise LedgerRowExists(stamp.job_id) from error
        return True

    async def record_retry(
        self,
        stamp: JobStamp,
        *,
        error_type: str,
        message: str,
        payload: dict[str, Any] | None,
        retry_at: datetime,
    ) -> bool:
        """Record a try that will be retried; False when the job had already succeeded."""
        fields = {"error_type": error_type, "error_message": message}
        enqueued_at = await self._upsert(
            stamp, status="retrying", payload=payload, next_retry_at=retry_at, **fields
        )
        if enqueued_at is None:
            return False
        finished = utcnow()
        statement = insert_for(self.session, JobTry).values(
            job_id=stamp.job_id,
            enqueued_at=enqueued_at,
            try_number=stamp.tries,
            worker=stamp.worker,
            started_at=stamp.started_at,
            finished_at=finished,
            duration_ms=_milliseconds(stamp.started_at, finished),
            retry_at=retry_at,
            **fields,
        )
        # The same try recorded twice (a delivery whose commit was lost, run again): once.
        await self.session.execute(statement.on_conflict_do_nothing())
        return True

    async def record_failure(
        self,
        stamp: JobStamp,
        *,
        error_type: str,
        message: str,
        payload: dict[str, Any] | None,
        retryable: bool = True,
    ) -> bool:
        """Record a final failure; False when the job had in fact already succeeded."""
        recorded = await self._upsert(
            stamp,
            status="failed",
            error_type=error_type,
            error_message=message,
            payload=payload,
            retryable=retryable,
        )
        return recorded is not None

    async def record_cancelled(
        self, stamp: JobStamp, *, message: str, payload: dict[str, Any] | None
    ) -> bool:
        """Record a try an operator cancelled as it ran; False when the job had already
        succeeded."""
        recorded = await self._upsert(
            stamp,
            status="cancelled",
            error_type="Cancelled",
            error_message=message,
            payload=payload,
        )
        return recorded is not None

    async def _upsert(self, stamp: JobStamp, *, status: str, **fields: Any) -> datetime | None:
        """The job's state written; the partition key it is kept under, None when the job
        had already succeeded."""
        values = _ledger_values(stamp, status=status, **fields)
        statement = _ledger_upsert(dialect_of(self.session))
        written: datetime | None = await self.session.scalar(statement, values)
        return written

    async def count_duplicate(self, job_id: str) -> None:
        await self.session.execute(
            update(JobRecord)
            .where(JobRecord.job_id == job_id)
            .values(duplicates=JobRecord.duplicates + 1)
        )

    async def cancel(
        self,
        job_id: str,
        function: str,
        payload: dict[str, Any] | None = None,
        enqueued_at: datetime | None = None,
    ) -> bool:
        """Record a job taken off the queue before it ran (or before its next try), with
        its payload so that it can be retried; False when the history says it ended."""
        now = utcnow()
        insert = insert_for(self.session, JobRecord).values(
            job_id=bindparam("job_id"),
            enqueued_at=_enqueued_at(),
            function=function,
            payload=payload,
            status="cancelled",
            tries=0,
            started_at=now,
            finished_at=now,
            duration_ms=0,
        )
        statement = insert.on_conflict_do_update(
            index_elements=_KEY,
            set_={"status": "cancelled", "finished_at": now, "next_retry_at": None},
            where=JobRecord.__table__.c.status == "retrying",
        ).returning(JobRecord.job_id)
        values = {"job_id": job_id, "enqueued_at": enqueued_at or day_of(now)}
        return (await self.session.execute(statement, values)).first() is not None

    async def retrying_before(self, cutoff: datetime, *, limit: int) -> list[tuple[str, datetime]]:
        """(job id, when its last try ended) of the jobs still retrying whose last try ended
        before ``cutoff``, oldest first, from the (status, finished_at) index."""
        statement = (
            select(JobRecord.job_id, JobRecord.finished_at)
            .where(JobRecord.status == _inlined("retrying"), JobRecord.finished_at < cutoff)
            .order_by(JobRecord.finished_at)
            .limit(limit)
        )
        return [(job_id, ended) for job_id, ended in (await self.session.execute(statement)).all()]

    async def close_retrying(
        self, job_id: str, *, seen_ended: datetime, error_type: str, message: str
    ) -> bool:
        """Fail a retrying job whose last try is still the one seen (``seen_ended``); False
        when it has moved on since (another try, a cancel, another sweep)."""
        statement = (
            update(JobRecord)
            .where(
                JobRecord.job_id == job_id,
                JobRecord.status == "retrying",
                JobRecord.finished_at == seen_ended,
            )
            .values(
                status="failed",
                error_type=error_type,
                error_message=message,
                retryable=True,
                next_retry_at=None,
                finished_at=utcnow(),
            )
            .returning(JobRecord.job_id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def get(self, job_id: str) -> JobRecord | None:
        """The job's record: one per job id (``_enqueued_at``), whatever its day."""
        return await self.session.scalar(select(JobRecord).where(JobRecord.job_id == job_id))

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Job ids (jobs and submissions) that begin with ``prefix``, ``%`` and ``_`` taken
        literally; at most ``limit``. Asked only for a prefix, never on a job's hot path."""
        owned = or_(
            JobRecord.job_id.startswith(prefix, autoescape=True),
            JobRecord.parent_id.startswith(prefix, autoescape=True),
        )
        statement = select(JobRecord.job_id, JobRecord.parent_id).where(owned).limit(limit)
        found: set[str] = set()
        for job_id, parent_id in (await self.session.execute(statement)).all():
            found.update(i for i in (job_id, parent_id) if i and i.startswith(prefix))
        return sorted(found)[:limit]

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

    async def results_of(
        self, parent_id: str, *, status: str, limit: int
    ) -> AsyncIterator[list[dict[str, Any] | None]]:
        """The results of a submission's jobs in one state, ``RESULTS_PAGE`` at a time:
        each may hold 16 KiB, so that ten thousand of them are never in memory at once."""
        statement = select(JobRecord.result).where(*_children(parent_id, status))
        streamed = await self.session.stream_scalars(
            statement.limit(limit).execution_options(yield_per=RESULTS_PAGE)
        )
        async for page in streamed.partitions():
            yield list(page)

    async def count_children(self, parent_id: str) -> dict[str, int]:
        """How many of a submission's jobs are in each state."""
        statement = (
            select(JobRecord.status, func.count())
            .where(JobRecord.parent_id == parent_id)
            .group_by(JobRecord.status)
        )
        return {status: int(n) for status, n in (await self.session.execute(statement)).all()}

    async def list_recent(
        self,
        *,
        status: str | None,
        function: str | None,
        limit: int,
        before: tuple[datetime, str] | None = None,
    ) -> list[JobRecord]:
        """Newest first, each filter served by an index on (filter, finished_at); ``before``
        (a finished_at and job id) is a page's keyset cursor: the jobs after that one."""
        order = (JobRecord.finished_at.desc(), JobRecord.job_id.desc())
        statement = select(JobRecord).options(*_HEADERS_ONLY).order_by(*order).limit(limit)
        if before is not None:
            finished_at, job_id = before
            # The first condition is the index's range; the second breaks ties in it.
            statement = statement.where(
                JobRecord.finished_at <= finished_at,
                or_(JobRecord.finished_at < finished_at, JobRecord.job_id < job_id),
            )
        if status is not None:
            statement = statement.where(JobRecord.status == _inlined(status))
        if function is not None:
            statement = statement.where(JobRecord.function == _inlined(function))
        return list((await self.session.scalars(statement)).all())

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
            .where(_UNHANDLED_FAILURE, JobRecord.finished_at >= cutoff)
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def list_failed(self, limit: int) -> list[JobRecord]:
        """Failures nobody has marked handled, newest first, without payloads and results."""
        statement = (
            select(JobRecord)
            .options(*_HEADERS_ONLY)
            .where(_UNHANDLED_FAILURE)
            .order_by(JobRecord.finished_at.desc())
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())

    async def mark_handled(self, job_ids: list[str] | None) -> int:
        """Mark failures handled (all unhandled ones when ``job_ids`` is None)."""
        statement = (
            update(JobRecord)
            .where(_UNHANDLED_FAILURE)
            .values(handled_at=utcnow())
            .returning(JobRecord.job_id)
        )
        if job_ids is not None:
            statement = statement.where(JobRecord.job_id.in_(job_ids))
        return len((await self.session.execute(statement)).all())

    async def forget_before(self, cutoff: datetime) -> Forgotten:
        """Forget the jobs enqueued before ``cutoff`` but the unhandled failures and the
        jobs still retrying: whole days dropped (``history_partitions``)."""
        return await history_partitions.forget_before(self.session, cutoff)

    async def make_days(self, first: date, last: date) -> int:
        """The history's partitions for the days from ``first`` to ``last``; how many made."""
        return await history_partitions.make_days(self.session, first, last)


def _ledger_values(stamp: JobStamp, *, status: str, **fields: Any) -> dict[str, Any]:
    finished = utcnow()
    return {
        "job_id": stamp.job_id,
        "function": stamp.function,
        "status": status,
        "parent_id": stamp.parent_id,
        "tries": stamp.tries,
        "started_at": stamp.started_at,
        "finished_at": finished,
        "duration_ms": _milliseconds(stamp.started_at, finished),
        "worker": stamp.worker,
        "error_type": None,
        "error_message": None,
        "retryable": None,
        "payload": None,
        "result": None,
        "next_retry_at": None,
        "enqueued_at": stamp.enqueued_at or day_of(stamp.started_at),
        **fields,
    }


def _milliseconds(started: datetime, finished: datetime) -> int:
    return int((finished - started).total_seconds() * 1000)
