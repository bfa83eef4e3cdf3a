"""Raw asyncpg into ``metrics`` (same table, same indexes), one connection: the ceiling the
record_metrics job path is measured against.

One more baseline writes the same statement into a copy of ``metrics`` without its foreign
key to ``runs``: PostgreSQL checks that key row by row, and the difference is its price.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from bench import cpu
from bench.context import Bench
from bench.cpu import CpuUse
from bench.measure import rate
from bench.queued import expect_rows
from bench.services import truncate_tables

BATCH = 1000
COLUMNS = ("run_id", "name", "step", "value", "recorded_at")
Row = tuple[int, str, int, float, datetime]
Insert = Callable[[asyncpg.Connection, int, list[Row]], Awaitable[None]]

_UNNEST = """
    INSERT INTO metrics (run_id, name, step, value, recorded_at)
    SELECT $1, p.name, p.step, p.value, p.recorded_at
    FROM unnest($2::text[], $3::integer[], $4::double precision[], $5::timestamptz[])
        AS p(name, step, value, recorded_at)
    ON CONFLICT ON CONSTRAINT uq_metrics_run_id_name_step DO NOTHING
"""
_JSON = """
    INSERT INTO {table} (run_id, name, step, value, recorded_at)
    SELECT $1, p.name, p.step, p.value, p.recorded_at
    FROM json_to_recordset($2::json)
        AS p(name text, step integer, value double precision, recorded_at timestamptz)
    ON CONFLICT (run_id, name, step) DO NOTHING
"""
# Made with LIKE metrics INCLUDING ALL: columns, defaults, checks, indexes; no foreign key.
NO_FK_TABLE = "bench_metrics_without_fk"


async def _copy(connection: asyncpg.Connection, run_id: int, rows: list[Row]) -> None:
    await connection.copy_records_to_table("metrics", records=rows, columns=COLUMNS)


async def _unnest(connection: asyncpg.Connection, run_id: int, rows: list[Row]) -> None:
    for start in range(0, len(rows), BATCH):
        part = rows[start : start + BATCH]
        columns = [[row[i] for row in part] for i in range(1, 5)]
        await connection.execute(_UNNEST, run_id, *columns)


async def _json_into(
    table: str, connection: asyncpg.Connection, run_id: int, rows: list[Row]
) -> None:
    keys = COLUMNS[1:]
    statement = _JSON.format(table=table)
    for start in range(0, len(rows), BATCH):
        points = [dict(zip(keys, row[1:], strict=True)) for row in rows[start : start + BATCH]]
        await connection.execute(statement, run_id, orjson.dumps(points).decode())


async def _json(connection: asyncpg.Connection, run_id: int, rows: list[Row]) -> None:
    await _json_into("metrics", connection, run_id, rows)


async def _json_without_fk(connection: asyncpg.Connection, run_id: int, rows: list[Row]) -> None:
    await _json_into(NO_FK_TABLE, connection, run_id, rows)


@dataclass(frozen=True)
class Method:
    insert: Insert
    table: str = "metrics"


JSON_METHOD = f"json_to_recordset INSERT .. ON CONFLICT, {BATCH:,}/stmt into metrics"
METHODS: dict[str, Method] = {
    "COPY into metrics": Method(_copy),
    f"unnest arrays INSERT .. ON CONFLICT, {BATCH:,}/stmt into metrics": Method(_unnest),
    JSON_METHOD: Method(_json),
    # Not a way to write: what the foreign key costs the statement the job path runs.
    f"{JSON_METHOD} without its foreign key": Method(_json_without_fk, NO_FK_TABLE),
}


async def rows_per_second(bench: Bench) -> dict[str, list[float]]:
    """Each method, each run, on an emptied table; rows/s from first write to last reply."""
    results: dict[str, list[float]] = {name: [] for name in METHODS}
    for _ in range(bench.runs):
        for name, method in METHODS.items():
            await truncate_tables(bench.services)
            results[name].append(await _one_run(bench, method))
    return results


async def copy_payloads(bench: Bench, payloads: list[dict[str, Any]]) -> tuple[float, CpuUse]:
    """The metric jobs' points, COPY'd in one call into metrics by this process: rows/s and
    the CPU this process and PostgreSQL used (the job path's ceiling, row for row)."""
    now = datetime.now(UTC)
    rows = [
        (payload["run_id"], point["name"], point["step"], point["value"], now)
        for payload in payloads
        for point in payload["points"]
    ]
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        before = await cpu.sample(bench)
        started = time.perf_counter()
        await _copy(connection, rows[0][0], rows)
        per_second = rate(len(rows), time.perf_counter() - started)
        used = (await cpu.sample(bench)).minus(before)
    finally:
        await connection.close()
    await expect_rows(bench, "metrics", len(rows))
    return per_second, used


async def _one_run(bench: Bench, method: Method) -> float:
    count = bench.sizes.raw_rows
    run_id = await bench.new_run()
    now = datetime.now(UTC)
    rows = [(run_id, "loss", step, 0.5, now) for step in range(count)]
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        if method.table != "metrics":
            await connection.execute(f"CREATE TABLE {method.table} (LIKE metrics INCLUDING ALL)")
        started = time.perf_counter()
        await method.insert(connection, run_id, rows)
        per_second = rate(count, time.perf_counter() - started)
        await expect_rows(bench, method.table, count)
        return per_second
    finally:
        if method.table != "metrics":
            await connection.execute(f"DROP TABLE IF EXISTS {method.table}")
        await connection.close()
