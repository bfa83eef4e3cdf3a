"""The job history's writes (``JobRecordRepository``): the ledger's row in the effect's
transaction, retries and their tries, cancels, the sweep's closes, marking handled, the
retention. Its reads are ``HistoryReads``; the row and its statements ``ledger``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from domain.db import sqlstate, utcnow
from domain.models import JobRecord, JobTry
from domain.repositories import history_partitions
from domain.repositories._sql import dialect_of, insert_for
from domain.repositories.generations import GenerationRepository
from domain.repositories.history_partitions import Forgotten, day_of
from domain.repositories.history_reads import UNHANDLED_FAILURE_SQL, HistoryReads, inlined
from domain.repositories.ledger import (
    LEDGER_KEY,
    UNIQUE_VIOLATIONS,
    JobStamp,
    LedgerRowExists,
    ledger_insert,
    ledger_upsert,
    ledger_values,
    milliseconds,
    recorded_enqueue_time,
)

__all__ = [
    "GenerationRepository",
    "JobRecordRepository",
    "JobStamp",
    "LedgerRowExists",
]


class JobRecordRepository(HistoryReads):
    """The durable job history, and the last line of exactly-once effects: its writes here,
    its reads in ``HistoryReads``."""

    async def record_success(
        self,
        stamp: JobStamp,
        *,
        result: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> bool:
        """Record a success in the effect's transaction; False when the job already succeeded.

        A ``first_record`` stamp is inserted: ``LedgerRowExists`` if any row of the job is
        there (its transaction is then lost), under any enqueue time unless its id was
        ``minted``."""
        if not stamp.first_record:
            recorded = await self._upsert(stamp, status="succeeded", result=result, payload=payload)
            return recorded is not None
        values = ledger_values(stamp, status="succeeded", result=result, payload=payload)
        try:
            insert = ledger_insert(dialect_of(self.session), probe=not stamp.minted)
            await self.session.execute(insert, values)
        except IntegrityError as error:
            if sqlstate(error) not in UNIQUE_VIOLATIONS:
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
            duration_ms=milliseconds(stamp.started_at, finished),
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
        values = ledger_values(stamp, status=status, **fields)
        statement = ledger_upsert(dialect_of(self.session))
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
            enqueued_at=recorded_enqueue_time(),
            function=function,
            payload=payload,
            status="cancelled",
            tries=0,
            started_at=now,
            finished_at=now,
            duration_ms=0,
        )
        statement = insert.on_conflict_do_update(
            index_elements=LEDGER_KEY,
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
            .where(JobRecord.status == inlined("retrying"), JobRecord.finished_at < cutoff)
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

    async def mark_handled(self, job_ids: list[str] | None) -> int:
        """Mark failures handled (all unhandled ones when ``job_ids`` is None)."""
        statement = (
            update(JobRecord)
            .where(UNHANDLED_FAILURE_SQL)
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
