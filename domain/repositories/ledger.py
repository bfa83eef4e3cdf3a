"""The job ledger's row: who ran a job (``JobStamp``) and the statements that write its
state, in the effect's transaction. The history is partitioned by day of enqueue, so the
ledger's key is (job_id, enqueued_at)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import orjson
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
def ledger_insert(dialect: str, *, probe: bool = True) -> Any:
    """The ledger's first record of a job: a plain INSERT. An upsert inserts speculatively
    (48 more bytes of WAL per job, and a probe of the primary key before the insert's own);
    a first try rarely finds a row, and when it does the unique key refuses it. Under the
    key it was first recorded under when ``probe``, else under this delivery's."""
    enqueued = recorded_enqueue_time() if probe else bindparam("enqueued_at")
    return dialect_insert(dialect, JobRecord.__table__).values(
        {**{column: bindparam(column) for column in _LEDGER_COLUMNS}, "enqueued_at": enqueued}
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


# A success's row as a common table expression of the effect's own statement
# (``one_statement``): the columns a success sets, each value a typed parameter.
_SUCCESS_COLUMNS = {
    "job_id": "varchar",
    "function": "varchar",
    "parent_id": "varchar",
    "tries": "integer",
    "started_at": "timestamptz",
    "finished_at": "timestamptz",
    "duration_ms": "integer",
    "worker": "varchar",
    "payload": "json",
    "result": "json",
}


@cache
def success_cte(first: int, *, probe: bool) -> str:
    """``recorded``: the success's row, its values from ``$first`` on (``success_params``),
    inserted when the CTE ``applied`` returned a row. Its partition key is the one the job
    was first recorded under when ``probe`` (as ``recorded_enqueue_time``), else this
    delivery's enqueue time."""
    values = [f"CAST(${first + i} AS {kind})" for i, kind in enumerate(_SUCCESS_COLUMNS.values())]
    enqueued = f"CAST(${first + len(values)} AS timestamptz)"
    if probe:
        enqueued = (
            f"coalesce((SELECT enqueued_at FROM job_records WHERE job_id = CAST(${first} AS "
            f"varchar) LIMIT 1), {enqueued})"
        )
    return (
        f"recorded AS (INSERT INTO job_records ({', '.join(_SUCCESS_COLUMNS)}, status, "
        f"enqueued_at) SELECT {', '.join(values)}, 'succeeded', {enqueued} "
        "WHERE EXISTS (SELECT FROM applied))"
    )


def success_params(stamp: JobStamp, result: dict[str, Any] | None) -> list[Any]:
    """The values of ``success_cte``, in its order."""
    values = ledger_values(stamp, status="succeeded", result=result, payload=stamp.payload)
    for column in ("payload", "result"):  # the engine's serializer's text
        if values[column] is not None:
            values[column] = orjson.dumps(values[column]).decode()
    return [values[column] for column in _SUCCESS_COLUMNS] + [values["enqueued_at"]]


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
    # Its id was minted by the enqueue that wrote this very job: no other enqueue can have
    # recorded a row of it under another time, so its first record needs no look for one.
    minted: bool = False


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
