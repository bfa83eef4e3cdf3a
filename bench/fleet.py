"""The fleet: 1, 2 and 4 worker processes on the one-row job, and what each job costs the
two shared servers: PostgreSQL CPU and WAL bytes, Redis CPU and commands.

On a 2-core machine more workers do not make more jobs a second; the point is the work
per job on the servers every worker shares, which says how many jobs a second one
PostgreSQL core and one Redis core carry (README, "Performance").

WAL is read with ``pg_walinspect`` (PostgreSQL 15's contrib, created in the bench's own
database when it can be, with a temporary replication slot holding the WAL until it is
read): the records of this database's blocks and the commits of its
transactions, full-page images left out (they follow the checkpoints, not the jobs). Without
it, the WAL position's advance, which counts every database of the server. Redis counts
commands per server: the rate of the other clients, sampled just before each run, is
taken off.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg

from bench import cpu
from bench.context import Bench
from bench.cpu import CpuUse
from bench.measure import Row, rate
from bench.processes import WORKER_SETTINGS, running_workers
from bench.queued import RECORDED_METRIC_JOBS, expect_rows, metric_payloads, timed_jobs
from bench.services import reset_redis, truncate_tables

FLEETS = (1, 2, 4)
BACKGROUND_SECONDS = 1.0  # of Redis's other clients' commands, sampled before a run

_OUR_WAL = """
WITH record AS (SELECT * FROM pg_get_wal_records_info($1, $2)),
     ours AS (SELECT DISTINCT xid FROM record WHERE block_ref LIKE $3 AND xid <> '0')
SELECT coalesce(sum(record_length - fpi_length), 0) FROM record
WHERE block_ref LIKE $3 OR (resource_manager = 'Transaction' AND xid IN (SELECT xid FROM ours))
"""


@dataclass(frozen=True)
class FleetRun:
    per_second: float
    cpu: CpuUse
    jobs: int
    wal_bytes: float
    redis_commands: float


class WalMeter:
    """WAL written between two positions, this database's own when pg_walinspect is there."""

    def __init__(self, connection: asyncpg.Connection, own: bool) -> None:
        self.connection = connection
        self.own = own

    @classmethod
    async def open(cls, bench: Bench) -> WalMeter:
        connection = await asyncpg.connect(bench.services.dsn)
        try:
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            # A checkpoint may recycle a run's WAL before it is read: a temporary slot
            # keeps it until this connection closes (never longer, whatever happens).
            await connection.execute(
                "SELECT pg_create_physical_replication_slot("
                "'dbjobs_bench_wal_' || pg_backend_pid(), true, true)"
            )
        except asyncpg.PostgresError:  # not installed, or not allowed: the whole server's
            return cls(connection, own=False)
        return cls(connection, own=True)

    @property
    def label(self) -> str:
        return "this database's, FPIs out" if self.own else "whole server's"

    async def position(self) -> int:
        """WAL written to disk so far (asyncpg reads a pg_lsn as an integer): every commit a
        job made is in it, and pg_walinspect reads no further."""
        return int(await self.connection.fetchval("SELECT pg_current_wal_flush_lsn()"))

    async def bytes_since(self, start: int) -> float:
        end = await self.position()
        if not self.own:
            return float(end - start)
        oid = await self.connection.fetchval(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        )
        return float(await self.connection.fetchval(_OUR_WAL, start, end, f"%/{oid}/%"))

    async def close(self) -> None:
        await self.connection.close()


async def _redis_commands(bench: Bench) -> int:
    return int((await bench.pool.info("stats"))["total_commands_processed"])


async def _background_rate(bench: Bench) -> float:
    """Commands a second that Redis serves to others (other databases, this process)."""
    before = await _redis_commands(bench)
    await asyncio.sleep(BACKGROUND_SECONDS)
    return max(0, await _redis_commands(bench) - before - 1) / BACKGROUND_SECONDS


async def fleet_run(bench: Bench, wal: WalMeter, workers: int) -> FleetRun:
    count = bench.sizes.metric_jobs
    await truncate_tables(bench.services)
    await reset_redis(bench.services)
    run_id = await bench.new_run()
    payloads = metric_payloads(run_id, count)
    with running_workers(bench.env(), workers, WORKER_SETTINGS) as processes:
        background = await _background_rate(bench)
        before = await cpu.sample(bench, processes)
        start, commands = await wal.position(), await _redis_commands(bench)
        started = time.perf_counter()
        seconds = await timed_jobs(bench, "record_metric", payloads)
        used = (await cpu.sample(bench, processes)).minus(before)
        sent = await _redis_commands(bench) - commands
        elapsed = time.perf_counter() - started
        wal_bytes = await wal.bytes_since(start)
    await expect_rows(bench, "metrics", count)
    await expect_rows(bench, "job_records", count, RECORDED_METRIC_JOBS)
    ours = max(0.0, sent - background * elapsed)
    return FleetRun(rate(count, seconds), used, count, wal_bytes / count, ours / count)


def _rows(workers: int, runs: list[FleetRun], wal_label: str) -> list[Row]:
    label = f"fleet, {workers} worker{'s' * (workers > 1)}"
    per_job = [1000 / r.jobs for r in runs]
    pg = [r.cpu.postgres * k for r, k in zip(runs, per_job, strict=True)]
    redis = [r.cpu.redis * k for r, k in zip(runs, per_job, strict=True)]
    worker = [r.cpu.workers * k for r, k in zip(runs, per_job, strict=True)]
    return [
        Row(label, "jobs/s", [r.per_second for r in runs], note="record_metric, 1 point/job"),
        Row("  PostgreSQL CPU per job", "ms", pg, note="backends of the bench database"),
        Row("  WAL per job", "bytes", [r.wal_bytes for r in runs], note=wal_label),
        Row("  Redis CPU per job", "ms", redis),
        Row("  Redis commands per job", "cmds", [r.redis_commands for r in runs]),
        Row("  worker CPU per job", "ms", worker, note="all worker processes"),
    ]


async def fleet(bench: Bench) -> list[Row]:
    """Each fleet size ``bench.runs`` times, the sizes interleaved (the machine's mood, shared)."""
    wal = await WalMeter.open(bench)
    try:
        runs: dict[int, list[FleetRun]] = {n: [] for n in FLEETS}
        for _ in range(bench.runs):
            for workers in FLEETS:
                runs[workers].append(await fleet_run(bench, wal, workers))
    finally:
        await wal.close()
    return [row for workers in FLEETS for row in _rows(workers, runs[workers], wal.label)]
