from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.db import utcnow
from domain.models import GenerationChunk, JobRecord, ProfileGeneration
from domain.repositories._sql import dialect_insert, dialect_of, insert_for

_LEDGER_COLUMNS = (
    "job_id",
    "function",
    "status",
    "tries",
    "started_at",
    "finished_at",
    "duration_ms",
    "error_type",
    "error_message",
    "payload",
)


@cache
def _ledger_upsert(dialect: str) -> Any:
    """The ledger's upsert, built once per dialect: every job runs it, and building it per
    call made SQLAlchemy rebuild its cache key (a walk over every value) every time."""
    table = JobRecord.__table__
    insert = dialect_insert(dialect, table).values(
        {column: bindparam(column) for column in _LEDGER_COLUMNS}
    )
    # A failed job may be retried and succeed later; a success is never overwritten.
    return insert.on_conflict_do_update(
        index_elements=["job_id"],
        set_={column: insert.excluded[column] for column in _LEDGER_COLUMNS[1:]},
        where=table.c.status != "succeeded",
    ).returning(table.c.job_id)


@dataclass(frozen=True)
class JobStamp:
    """Who is doing the work: the delivery's job id, function and try number."""

    job_id: str
    function: str
    tries: int
    started_at: datetime


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

    async def record_success(self, stamp: JobStamp) -> bool:
        """Record a success in the effect's transaction; False when the job already succeeded."""
        return await self._upsert(stamp, status="succeeded")

    async def record_failure(
        self, stamp: JobStamp, *, error_type: str, message: str, payload: dict[str, Any] | None
    ) -> bool:
        """Record a final failure; False when the job had in fact already succeeded."""
        return await self._upsert(
            stamp, status="failed", error_type=error_type, error_message=message, payload=payload
        )

    async def _upsert(self, stamp: JobStamp, *, status: str, **fields: Any) -> bool:
        finished = utcnow()
        values = {
            "job_id": stamp.job_id,
            "function": stamp.function,
            "status": status,
            "tries": stamp.tries,
            "started_at": stamp.started_at,
            "finished_at": finished,
            "duration_ms": int((finished - stamp.started_at).total_seconds() * 1000),
            "error_type": None,
            "error_message": None,
            "payload": None,
            **fields,
        }
        statement = _ledger_upsert(dialect_of(self.session))
        return (await self.session.execute(statement, values)).first() is not None

    async def count_duplicate(self, job_id: str) -> None:
        await self.session.execute(
            update(JobRecord)
            .where(JobRecord.job_id == job_id)
            .values(duplicates=JobRecord.duplicates + 1)
        )

    async def get(self, job_id: str) -> JobRecord | None:
        return await self.session.get(JobRecord, job_id)

    async def list_failed(self, limit: int) -> list[JobRecord]:
        statement = (
            select(JobRecord)
            .where(JobRecord.status == "failed")
            .order_by(JobRecord.finished_at.desc())
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())

    async def delete_succeeded_before(self, cutoff: datetime) -> int:
        statement = (
            delete(JobRecord)
            .where(JobRecord.status == "succeeded", JobRecord.finished_at < cutoff)
            .returning(JobRecord.job_id)
        )
        return len((await self.session.execute(statement)).all())
