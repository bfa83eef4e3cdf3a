"""The job ledger's row: who ran a job (``JobStamp``) and the statements that write its
state, in the effect's transaction. The history is partitioned by day of enqueue, so the
ledger's key is (job_id, enqueued_at)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select

from domain.db import utcnow
from domain.models import JobRecord
from domain.repositories._sql import dialect_insert
from domain.repositories.history_partitions import day_of

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

# PostgreSQL's unique_violation; SQLite's driver names no SQLSTATE, and its only
# IntegrityError an insert of valid values can meet here is the primary key.
UNIQUE_VIOLATIONS = ("23505", None)


LEDGER_KEY = ["job_id", "enqueued_at"]


def recorded_enqueue_time() -> Any:
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
def ledger_insert(dialect: str) -> Any:
    """The ledger's first record of a job: a plain INSERT. An upsert inserts speculatively
    (48 more bytes of WAL per job, and a probe of the primary key before the insert's own);
    a first try rarely finds a row, and when it does the unique key refuses it."""
    return dialect_insert(dialect, JobRecord.__table__).values(
        {
            **{column: bindparam(column) for column in _LEDGER_COLUMNS},
            "enqueued_at": recorded_enqueue_time(),
        }
    )


@cache
def ledger_upsert(dialect: str) -> Any:
    """The ledger's upsert, built once per dialect: every job runs it, and building it per
    call made SQLAlchemy rebuild its cache key (a walk over every value) every time."""
    table = JobRecord.__table__
    insert = dialect_insert(dialect, table).values(
        {
            **{column: bindparam(column) for column in _LEDGER_COLUMNS},
            "enqueued_at": recorded_enqueue_time(),
        }
    )
    # A failed or retrying job may run again and succeed; a success is never overwritten.
    return insert.on_conflict_do_update(
        index_elements=LEDGER_KEY,
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


def ledger_values(stamp: JobStamp, *, status: str, **fields: Any) -> dict[str, Any]:
    finished = utcnow()
    return {
        "job_id": stamp.job_id,
        "function": stamp.function,
        "status": status,
        "parent_id": stamp.parent_id,
        "tries": stamp.tries,
        "started_at": stamp.started_at,
        "finished_at": finished,
        "duration_ms": milliseconds(stamp.started_at, finished),
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


def milliseconds(started: datetime, finished: datetime) -> int:
    return int((finished - started).total_seconds() * 1000)
