"""Reading a metric back at scale: one run with a million points of one metric.

The points are seeded with COPY (a decaying loss with noise, every step from 0). Right
after, before any ANALYZE, the console's run page and its chart's history are timed
(``bench.run_page``: the run page under 1 s, issue 20). Then they are read through the
domain's own use cases on a fresh unit of work per call: downsampled to
500 buckets (the issue's figure), to 320 (what MLflow's UI asks for a line) and to 5,000,
a zoom on a tenth of the steps, the run's summary and pages of 10,000 points. Each is
EXPLAINed too, sequential scans priced out (the table holds this one run): the row says
which index its plan reads, and MISSED if a plan still scans the metrics table. The
downsample is timed first right after the COPY, the statistics still the empty table's
(autovacuum held off), as a server without autovacuum reads an upload; then after ANALYZE
but before VACUUM, as a run still being written is read (the visibility map unset: the
index-only scan visits the table). Last, `dbjobs runs metrics RUN
--name loss --json` end to end: process start to exit, and the CPU it used.
"""

from __future__ import annotations

import math
import random
import resource
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import event, text

from bench.console import console_client
from bench.context import Bench
from bench.cpu import process_cpu_seconds
from bench.measure import Row
from bench.producers import ROOT, jobs_command
from bench.run_page import run_page_rows, warm_up
from bench.services import truncate_tables
from domain import services
from domain.metric_queries import MetricHistoryQuery, MetricPageQuery
from domain.uow import SqlAlchemyUnitOfWork

POINTS = 1_000_000
NAME = "loss"
WARMUP_CALLS = 2
TIMED_CALLS = 7
INDEX_NODES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")

Call = Callable[[SqlAlchemyUnitOfWork], Awaitable[object]]


async def metric_history(bench: Bench) -> list[Row]:
    await truncate_tables(bench.services)
    try:
        run_id = await bench.new_run()
        points = bench.sizes.read_rows  # 1,000,000; 100,000 with --quick
        await _statistics(
            bench, "ANALYZE metrics; ALTER TABLE metrics SET (autovacuum_enabled = off)"
        )
        async with console_client(bench) as client:
            await warm_up(client, run_id, NAME)
            seconds = await _seed(bench, run_id, points)
            rows = [Row(f"metrics: seed {points:,} points of one run (COPY)", "s", [seconds])]
            rows += await run_page_rows(client, run_id, NAME, points)
        probes = _probes(run_id, points)
        name, call = probes[0]
        # As an upload leaves it: the statistics are the empty table's until ANALYZE.
        rows.append(await _measure(bench, f"{name}, right after upload, no ANALYZE", call, points))
        await _statistics(bench, "ALTER TABLE metrics RESET (autovacuum_enabled); ANALYZE metrics")
        rows.append(await _measure(bench, f"{name}, before VACUUM", call, points))
        await _vacuum(bench)
        rows += [await _measure(bench, name, call, points) for name, call in probes]
        rows.append(_cli_row(bench, run_id, points))
        return rows
    finally:
        await truncate_tables(bench.services)


def _probes(run_id: int, points: int) -> list[tuple[str, Call]]:
    def downsampled(buckets: int, **bounds: int) -> Call:
        query = MetricHistoryQuery(run_ids=[run_id], name=NAME, buckets=buckets, **bounds)
        return lambda uow: services.metric_history(uow, query)

    def page(after: int) -> Call:
        query = MetricPageQuery(run_id=run_id, name=NAME, after_step=after)
        return lambda uow: services.metric_page(uow, query)

    tenth = points // 10
    return [
        (f"metric_history, {points:,} points to 500 buckets", downsampled(500)),
        ("metric_history, to 320 buckets", downsampled(320)),
        ("metric_history, to 5,000 buckets", downsampled(5000)),
        (
            f"metric_history, zoom on {tenth:,} steps, 500 buckets",
            downsampled(500, first_step=4 * tenth, last_step=5 * tenth - 1),
        ),
        (f"run_summary, {points:,} points", lambda uow: services.run_summary(uow, run_id)),
        ("metric_page, first 10,000 points", page(-1)),
        (f"metric_page, 10,000 points from step {9 * tenth:,}", page(9 * tenth)),
    ]


async def _seed(bench: Bench, run_id: int, points: int) -> float:
    rng = random.Random(7)
    now = datetime.now(UTC)
    records = [
        (run_id, NAME, step, math.exp(-step / (points / 5)) + rng.gauss(0, 0.02), now)
        for step in range(points)
    ]
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        started = time.perf_counter()
        await connection.copy_records_to_table(
            "metrics", records=records, columns=["run_id", "name", "step", "value", "recorded_at"]
        )
        return time.perf_counter() - started
    finally:
        await connection.close()


async def _statistics(bench: Bench, statements: str) -> None:
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        await connection.execute(statements)
    finally:
        await connection.close()


async def _vacuum(bench: Bench) -> None:
    """What autovacuum does to a table that grew: the visibility map index-only scans use."""
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        await connection.execute("VACUUM ANALYZE metrics")
    finally:
        await connection.close()


async def _measure(bench: Bench, name: str, call: Call, points: int) -> Row:
    """Wall milliseconds per call, and the CPU its PostgreSQL backend spent: on a shared
    machine the CPU is the figure that does not wait for the other processes."""
    milliseconds: list[float] = []
    postgres_cpu: list[float] = []
    for _ in range(bench.runs):
        for n in range(WARMUP_CALLS + TIMED_CALLS):
            async with bench.unit_of_work() as uow:
                backend = await uow.session.scalar(text("SELECT pg_backend_pid()"))
                cpu_before = process_cpu_seconds(backend)
                started = time.perf_counter()
                await call(uow)
                if n >= WARMUP_CALLS:
                    milliseconds.append((time.perf_counter() - started) * 1000)
                    postgres_cpu.append((process_cpu_seconds(backend) - cpu_before) * 1000)
    indexes, seq_scans = await _plan(bench, call)
    return Row(
        f"  {name}",
        "ms",
        milliseconds,
        target="uses an index",
        check=lambda _median: bool(indexes) and not seq_scans,
        note=(f"NO INDEX: {', '.join(seq_scans)}; " if seq_scans else "")
        + f"PG CPU {statistics.median(postgres_cpu):,.0f} ms; "
        + f"{', '.join(dict.fromkeys(indexes)) or 'no index'}; median of {len(milliseconds)}",
    )


async def _plan(bench: Bench, call: Call) -> tuple[list[str], list[str]]:
    """The metrics indexes and sequential scans in the plans of a call's statements."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_rest: Any) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((sql, parameters))

    event.listen(bench.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with bench.unit_of_work() as uow:
            await call(uow)
    finally:
        event.remove(bench.engine.sync_engine, "before_cursor_execute", record)
    indexes: list[str] = []
    seq_scans: list[str] = []
    async with bench.engine.connect() as connection:
        # The bench's table holds one run: scanning it whole is the right plan here, and
        # the wrong one among other runs' points. Priced out, a plan shows its index.
        await connection.exec_driver_sql("SET enable_seqscan = off")
        for sql, parameters in sent:
            result = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", parameters)
            for node in _nodes(_plan_of(result.scalar_one())):
                if node["Node Type"] in INDEX_NODES and "metrics" in node["Index Name"]:
                    indexes.append(f"{node['Node Type']} using {node['Index Name']}")
                if node["Node Type"] == "Seq Scan" and node["Relation Name"] == "metrics":
                    seq_scans.append("Seq Scan on metrics")
    return indexes, seq_scans


def _plan_of(value: Any) -> dict[str, Any]:
    import json

    plans = json.loads(value) if isinstance(value, str) else value
    plan: dict[str, Any] = plans[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _cli_row(bench: Bench, run_id: int, points: int) -> Row:
    """`dbjobs runs metrics` as a user runs it: wall time, and the CLI's own CPU beside it."""
    args = ["runs", "metrics", str(run_id), "--name", NAME, "--json"]
    walls, cpus = [], []
    _run_cli(args, bench.env())  # warms the file cache
    for _ in range(max(bench.runs, 3)):
        wall, cpu = _run_cli(args, bench.env())
        walls.append(wall)
        cpus.append(cpu)
    cpus.sort()
    return Row(
        f"dbjobs runs metrics RUN --name loss --json, {points:,} points",
        "s",
        walls,
        target="about 1 s",
        check=lambda seconds: seconds <= 1.2,
        note=f"start to exit; CLI CPU {cpus[len(cpus) // 2]:.2f} s (user + sys)",
    )


def _run_cli(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([*jobs_command(), *args], cwd=ROOT, env=env, capture_output=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu
