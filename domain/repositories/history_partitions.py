"""The job history's days: PostgreSQL partitions of job_records and job_tries, one a day by
enqueue time, made ahead and dropped whole when the retention has passed them.

Each table has a default partition, so that an insert never fails for want of a day (a
job enqueued before the history was partitioned, a cron that did not run): a day made
later takes its rows out of the default first. The default also keeps what the retention
must not forget, the failures nobody has handled and the jobs still retrying, carried
there when their day is dropped (few: operators handle failures).

Retention takes an ACCESS EXCLUSIVE lock on both tables, for a moment (the catalog
changes and the carried rows): PostgreSQL refuses DETACH ... CONCURRENTLY on a table
with a default partition. ``LOCK_TIMEOUT`` bounds the wait behind running transactions,
during which every job's history write waits too; when it passes, SQLSTATE 55P03 is
transient and the prune is tried again. On SQLite (the demo) the tables are not
partitioned: the same retention deletes rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.db import UTCDateTime
from domain.repositories._sql import dialect_of

RECORDS, TRIES = "job_records", "job_tries"
TABLES = (RECORDS, TRIES)
DAYS_AHEAD = 3  # days made ahead, so a cron that misses a run or two changes nothing
LOCK_TIMEOUT = "2s"
# What the retention keeps past its days (SQL on job_records, aliased r).
KEPT = "(r.status = 'retrying' OR (r.status = 'failed' AND r.handled_at IS NULL))"


@dataclass(frozen=True)
class Forgotten:
    """What one retention pass did: rows forgotten, days dropped, rows kept past them."""

    rows: int
    days: int
    kept: int


def is_partition(name: str) -> bool:
    """Whether a table is one of the history's partitions (the schema's tables are not)."""
    return any(
        name == default_name(table) or (name.startswith(f"{table}_p") and name[-8:].isdigit())
        for table in TABLES
    )


def day_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def default_name(table: str) -> str:
    return f"{table}_default"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def day_of(moment: datetime) -> datetime:
    """The start of the (UTC) day ``moment`` falls in."""
    return day_start(moment.astimezone(UTC).date())


async def days_of(session: AsyncSession, table: str) -> list[date]:
    """The days ``table`` has a partition for, oldest first."""
    prefix = f"{table}_p"
    rows = await session.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:table AS regclass)"
        ),
        {"table": table},
    )
    names = [name for (name,) in rows if name.startswith(prefix)]
    return sorted(datetime.strptime(name[len(prefix) :], "%Y%m%d").date() for name in names)


async def make_days(session: AsyncSession, first: date, last: date) -> int:
    """Partitions for the days from ``first`` to ``last`` that have none; how many made.

    Each is built beside the table, filled with its rows from the default partition, then
    attached: ATTACH takes a SHARE UPDATE EXCLUSIVE lock on the table, which lets jobs
    write and read on, where CREATE TABLE .. PARTITION OF would take an exclusive one.
    """
    if dialect_of(session) != "postgresql":
        return 0
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    made = 0
    for table in TABLES:
        existing = set(await days_of(session, table))
        day = first
        while day <= last:
            if day not in existing:
                await _make_day(session, table, day)
                made += 1
            day += timedelta(days=1)
    return made


async def _make_day(session: AsyncSession, table: str, day: date) -> None:
    name, default = day_name(table, day), default_name(table)
    bounds = {"lower": day_start(day), "upper": day_start(day + timedelta(days=1))}
    await session.execute(
        text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    # Rows that waited in the default for their day move to it, or ATTACH would refuse.
    await session.execute(
        text(
            f"WITH moved AS (DELETE FROM {default} WHERE enqueued_at >= :lower "
            f"AND enqueued_at < :upper RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        ),
        bounds,
    )
    await session.execute(
        text(
            f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES "
            f"FROM ('{bounds['lower'].isoformat()}') TO ('{bounds['upper'].isoformat()}')"
        )
    )


async def forget_before(session: AsyncSession, cutoff: datetime) -> Forgotten:
    """Forget the history enqueued before ``cutoff``, except what ``KEPT`` names: every day
    wholly before it is dropped, and the default partition's rows deleted."""
    if dialect_of(session) != "postgresql":
        return Forgotten(await _delete_before(session, "job_records", cutoff), 0, 0)
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    days = await days_of(session, RECORDS)
    past = [day for day in days if day_start(day + timedelta(days=1)) <= cutoff]
    if past:
        # In the order a job's transaction writes them: taken one by one, a job holding
        # job_records and wanting job_tries would deadlock with the prune.
        await session.execute(text(f"LOCK TABLE {RECORDS}, {TRIES} IN ACCESS EXCLUSIVE MODE"))
    rows = kept = 0
    for day in past:
        dropped, carried = await _drop_day(session, day)
        rows, kept = rows + dropped, kept + carried
    rows += await _delete_before(session, default_name(RECORDS), cutoff)
    return Forgotten(rows, len(past), kept)


async def _drop_day(session: AsyncSession, day: date) -> tuple[int, int]:
    """Detach one day of both tables, carry what is kept to the default partitions (its
    range is theirs once detached), drop the day; its rows forgotten and kept."""
    records, tries = day_name(RECORDS, day), day_name(TRIES, day)
    for table, name in ((RECORDS, records), (TRIES, tries)):
        await session.execute(text(f"ALTER TABLE {table} DETACH PARTITION {name}"))
    total = await session.scalar(text(f"SELECT count(*) FROM {records}"))
    kept = await _rowcount(
        session, f"INSERT INTO {RECORDS} SELECT r.* FROM {records} r WHERE {KEPT}"
    )
    await session.execute(
        text(
            f"INSERT INTO {TRIES} SELECT t.* FROM {tries} t JOIN {records} r "
            f"USING (job_id, enqueued_at) WHERE {KEPT}"
        )
    )
    await session.execute(text(f"DROP TABLE {tries}, {records}"))
    return int(total or 0) - kept, kept


async def _delete_before(session: AsyncSession, records: str, cutoff: datetime) -> int:
    """Row by row, in the default partition (or SQLite's whole table): tries first."""
    old = f"r.enqueued_at < :cutoff AND NOT {KEPT}"
    await _rowcount(
        session,
        f"DELETE FROM {TRIES} WHERE EXISTS (SELECT 1 FROM {records} r WHERE {old} "
        f"AND r.job_id = {TRIES}.job_id AND r.enqueued_at = {TRIES}.enqueued_at)",
        cutoff=cutoff,
    )
    return await _rowcount(session, f"DELETE FROM {records} AS r WHERE {old}", cutoff=cutoff)


async def _rowcount(session: AsyncSession, sql: str, **values: datetime) -> int:
    statement = text(sql).bindparams(*(bindparam(name, type_=UTCDateTime) for name in values))
    result = await session.execute(statement, values)
    return cast(CursorResult[Any], result).rowcount
