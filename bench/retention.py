"""Retention of the job history, before and after its partitions: a day of jobs forgotten
out of 14, as the hourly prune does once the history is full.

Before (migration 0003, on a database of its own): the prune was one DELETE of the day's
successes, whose space comes back only to later inserts, once VACUUM has read the whole
table (timed too). After (the current schema): the prune detaches and drops the day's
partitions, carrying its unhandled failures and retrying jobs to the default partition.
Both histories are seeded alike (bench/history.py's seed, over 14 whole days ending at
midnight), their size read before and after. ``BENCH_RETENTION_ROWS`` sets the number of
jobs (default: the size's ``read_rows``); ``BENCH_RETENTION_SIDE=before`` (or ``after``)
measures one side only, so that the two can run at once on a large history.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.context import Bench
from bench.history import (
    HISTORY_MEGABYTES,
    PARTITIONED,
    SEED_RECORDS,
    SEED_TRIES,
    UNPARTITIONED,
    make_history_days,
)
from bench.measure import Row
from bench.services import BENCH, truncate_tables
from domain import schemas, services
from domain.repositories.history_partitions import day_start
from worker.testing.migrate import upgrade
from worker.testing.scratch import create_database, database_url, drop_database

DAYS = 14
KEEP_DAYS = DAYS - 1
BEFORE = "0004"
# 0003's prune: domain/repositories/bookkeeping.py's delete_succeeded_before.
_DELETE = "DELETE FROM job_records WHERE status = 'succeeded' AND finished_at < $1"


@dataclass(frozen=True)
class Pass:
    """One retention: its seconds, the rows it forgot, the history's MB before and after."""

    seconds: float
    rows: int
    megabytes: tuple[float, float]
    vacuum_seconds: float = 0.0

    def sizes(self) -> str:
        before, after = self.megabytes
        return f"{before:,.0f} MB before, {after:,.0f} MB after"


async def retention(bench: Bench) -> list[Row]:
    rows = int(os.environ.get("BENCH_RETENTION_ROWS", bench.sizes.read_rows))
    side = os.environ.get("BENCH_RETENTION_SIDE", "")
    end = day_start(datetime.now(UTC).date())
    measured: list[Row] = []
    if side in ("", "before"):
        measured += _before_rows(await _before(rows, end), rows)
    if side in ("", "after"):
        measured += _after_rows(await _after(bench, rows, end), rows)
    return measured


def _before_rows(before: Pass, rows: int) -> list[Row]:
    per_day = f"{rows:,} jobs over {DAYS} days"
    return [
        Row(
            f"retention before: DELETE a day's successes ({per_day})",
            "s",
            [before.seconds],
            note=f"{before.rows:,} rows; {before.sizes()}: dead rows until VACUUM",
        ),
        Row(
            "  VACUUM job_records, job_tries after it",
            "s",
            [before.vacuum_seconds],
            note="the space comes back to later inserts only, the files stay as large",
        ),
    ]


def _after_rows(after: Pass, rows: int) -> list[Row]:
    per_day = f"{rows:,} jobs over {DAYS} days"
    return [
        Row(
            f"retention after: drop a day's partitions ({per_day})",
            "s",
            [after.seconds],
            note=f"{after.rows:,} rows; {after.sizes()}; nothing left to vacuum",
        ),
    ]


async def _seed(dsn: str, rows: int, end: datetime, key: dict[str, str]) -> float:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(SEED_RECORDS.format(**key), rows, end, timedelta(days=DAYS) / rows)
        await connection.execute(SEED_TRIES.format(**key))
        await connection.execute("VACUUM ANALYZE job_records, job_tries")
        return float(await connection.fetchval(HISTORY_MEGABYTES))
    finally:
        await connection.close()


async def _before(rows: int, end: datetime) -> Pass:
    name = await create_database(BENCH)
    try:
        await asyncio.to_thread(upgrade, database_url(name, admin_url=BENCH.admin_url), BEFORE)
        dsn = database_url(name, admin_url=BENCH.admin_url, driver="")
        size = await _seed(dsn, rows, end, UNPARTITIONED)
        connection = await asyncpg.connect(dsn)
        try:
            started = time.perf_counter()
            status = await connection.execute(_DELETE, end - timedelta(days=KEEP_DAYS))
            seconds = time.perf_counter() - started
            after = float(await connection.fetchval(HISTORY_MEGABYTES))
            started = time.perf_counter()
            await connection.execute("VACUUM job_records, job_tries")
            vacuum = time.perf_counter() - started
        finally:
            await connection.close()
        return Pass(seconds, int(status.split()[-1]), (size, after), vacuum)
    finally:
        await drop_database(name, BENCH)


async def _after(bench: Bench, rows: int, end: datetime) -> Pass:
    await truncate_tables(bench.services)
    try:
        await make_history_days(bench, end, DAYS)
        size = await _seed(bench.services.dsn, rows, end, PARTITIONED)
        payload = schemas.PruneJobHistory(keep_days=KEEP_DAYS)
        started = time.perf_counter()
        async with bench.unit_of_work() as uow:
            pruned = await services.prune_job_history(uow, payload, now=end)
        seconds = time.perf_counter() - started
        connection = await asyncpg.connect(bench.services.dsn)
        try:
            after = float(await connection.fetchval(HISTORY_MEGABYTES))
        finally:
            await connection.close()
        return Pass(seconds, pruned.deleted, (size, after))
    finally:
        await truncate_tables(bench.services)
