"""Writing metric points on PostgreSQL: one statement per batch that stamps and checks the
run and counts new, duplicate and conflicting points, or, for a batch of new steps, a check
and a COPY (see ``metric_writes`` for the rules, shared with SQLite)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.repositories.metric_writes import (
    Key,
    MetricWrite,
    Point,
    Written,
    refuse_unless_accepting,
)
from domain.views import MAX_CONFLICTS_NAMED, ConflictingPoint


def rounds(points: Sequence[Point]) -> list[list[Point]]:
    """The points in rounds where each step appears once, in the order sent.

    One statement cannot insert a step and then update it (PostgreSQL refuses an ON
    CONFLICT DO UPDATE that affects a row twice), and each point must meet what the points
    before it left: a step sent twice goes in two rounds, run one after the other.
    """
    if len({(p["name"], p["step"]) for p in points}) == len(points):
        return [list(points)]  # every step once: the usual batch, one round
    seen: dict[Key, int] = {}
    result: list[list[Point]] = []
    for point in points:
        key = (point["name"], point["step"])
        index = seen.get(key, 0)
        seen[key] = index + 1
        if index == len(result):
            result.append([])
        result[index].append(point)
    return result


# The batch travels as one JSON document: one parameter whatever the batch size (asyncpg
# caps a statement at 32,767 parameters), and the worker spends a third of the CPU it spent
# encoding the same points as four arrays (asyncpg checks each array element's type).
# A stored step is "updated" only when the value differs (so a duplicate writes nothing):
# to itself under ``keep``, which locks the row and returns it, counted as a conflict.
# xmax = 0 tells a new row from an updated one. The run is stamped active (as in _PG_CHECK)
# and read in the same statement:
# nothing is written for a missing or closed run, and the caller learns which it was.
_PG_WRITE = text(
    """
    WITH touched AS (
        UPDATE runs SET last_activity_at = :now
        WHERE id = :run_id AND last_activity_at < :stale_before
        RETURNING id
    ), run AS (
        SELECT status, ended_at FROM runs WHERE id = :run_id
    ), point AS (
        SELECT p.name, p.step, p.value, coalesce(p.recorded_at, now()) AS recorded_at
        FROM json_to_recordset(CAST(:points AS json)) AS p(
            name text, step integer, value double precision, recorded_at timestamptz
        )
        WHERE EXISTS (
            SELECT FROM run WHERE status = 'running' OR ended_at >= :ended_after
        )
    ), written AS (
        INSERT INTO metrics AS stored (run_id, name, step, value, recorded_at)
        SELECT :run_id, name, step, value, recorded_at FROM point
        ON CONFLICT ON CONSTRAINT uq_metrics_run_id_name_step DO UPDATE SET
            value = CASE WHEN :overwrite THEN excluded.value ELSE stored.value END,
            recorded_at = CASE
                WHEN :overwrite THEN excluded.recorded_at ELSE stored.recorded_at
            END
        WHERE stored.value <> excluded.value
        RETURNING stored.xmax = 0 AS inserted, stored.name, stored.step, stored.value
    ), named AS (
        SELECT name, step, value FROM written WHERE NOT inserted ORDER BY name, step LIMIT :named
    )
    SELECT run.status, run.ended_at,
        (SELECT count(*) FROM written WHERE inserted) AS inserted,
        (SELECT count(*) FROM written WHERE NOT inserted) AS conflicts,
        (
            SELECT json_agg(json_build_array(
                named.name, named.step,
                CASE WHEN :overwrite THEN before.value ELSE named.value END, point.value
            ))
            FROM named JOIN point USING (name, step)
            LEFT JOIN metrics AS before
                ON before.run_id = :run_id AND before.name = named.name
                AND before.step = named.step
        ) AS named
    FROM (VALUES (1)) AS one LEFT JOIN run ON true
    """
)


# Every batch starts with one statement that marks the run active (the UPDATE matches, and
# locks, the row only when the stamp is stale, so concurrent writers to one run do not queue
# on every batch), reads its state and tells whether anything is stored in the batch's step
# range of each name. The usual batch (new steps of a running run) is then COPY'd straight
# into metrics: PostgreSQL spent 16.7 ms of CPU per 1,000 points on the INSERT .. ON
# CONFLICT above, 11.3 on a COPY (a staging table and INSERT .. SELECT cost as much as the
# INSERT). The unique key and the foreign key hold for the COPY as for any insert.
_PG_CHECK = text(
    """
    WITH touched AS (
        UPDATE runs SET last_activity_at = :now
        WHERE id = :run_id AND last_activity_at < :stale_before
        RETURNING id
    )
    SELECT run.status, run.ended_at, EXISTS (
        SELECT FROM unnest(
            CAST(:names AS text[]), CAST(:lows AS integer[]), CAST(:highs AS integer[])
        ) AS span(name, low, high)
        JOIN metrics ON metrics.run_id = :run_id AND metrics.name = span.name
            AND metrics.step BETWEEN span.low AND span.high
    ) AS stored
    FROM (VALUES (1)) AS one LEFT JOIN runs AS run ON run.id = :run_id
    """
)
_COLUMNS = ("run_id", "name", "step", "value", "recorded_at")
# A smaller batch goes straight to the upsert: one round trip where the check, a savepoint
# and the COPY take five. Measured in one process (CPU of client + PostgreSQL per point):
# 100 points, upsert 55 us, COPY 58; 300 points, 30 and 27; 1,000 points, 22.7 and 17.4.
COPY_FROM = 100


async def write_postgresql(session: AsyncSession, write: MetricWrite) -> Written:
    batches = rounds(write.points)
    if len(batches) == 1 and len(write.points) >= COPY_FROM:
        spans = _spans(write.points)
        params = {
            "run_id": write.run_id,
            "now": write.now,
            "stale_before": write.stale_before,
            "names": list(spans),
            "lows": [low for low, _ in spans.values()],
            "highs": [high for _, high in spans.values()],
        }
        row = (await session.execute(_PG_CHECK, params)).one()
        refuse_unless_accepting(write, row.status, row.ended_at)
        if not row.stored and await _copied(session, write):
            return Written(inserted=len(write.points))
    return await _upsert(session, write, batches)


async def _copied(session: AsyncSession, write: MetricWrite) -> bool:
    """COPY the points (none of their steps was stored); false if one was meanwhile."""
    from asyncpg import UniqueViolationError  # type: ignore[import-untyped]

    run_id, points = write.run_id, write.points
    columns: tuple[str, ...] = _COLUMNS
    records: list[tuple[Any, ...]]
    if any(p.get("recorded_at") is not None for p in points):
        now = write.now
        records = [
            (run_id, p["name"], p["step"], p["value"], p.get("recorded_at") or now) for p in points
        ]
    else:  # the column's default (the transaction's time): asyncpg encodes a datetime in
        # 1.2 us, two thirds of the worker's CPU for the COPY
        columns = _COLUMNS[:-1]
        records = [(run_id, p["name"], p["step"], p["value"]) for p in points]
    driver = await _driver_connection(session)  # in the session's transaction, begun above
    try:
        async with driver.transaction():  # a savepoint: the upsert can follow a failed COPY
            await driver.copy_records_to_table("metrics", records=records, columns=columns)
    except UniqueViolationError:  # a concurrent batch stored some of these steps meanwhile
        return False
    return True


def _spans(points: Sequence[Point]) -> dict[str, list[int]]:
    """Each name's lowest and highest step in the batch."""
    spans: dict[str, list[int]] = {}
    for point in points:
        step = point["step"]
        span = spans.get(point["name"])
        if span is None:
            spans[point["name"]] = [step, step]
        elif step < span[0]:
            span[0] = step
        elif step > span[1]:
            span[1] = step
    return spans


async def _driver_connection(session: AsyncSession) -> Any:
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


async def _upsert(session: AsyncSession, write: MetricWrite, batches: list[list[Point]]) -> Written:
    total = Written()
    for points in batches:
        params = {
            "run_id": write.run_id,
            "points": orjson.dumps(points).decode(),
            "overwrite": write.overwrite,
            "ended_after": write.ended_after,
            "named": MAX_CONFLICTS_NAMED,
            "now": write.now,
            "stale_before": write.stale_before,
        }
        row = (await session.execute(_PG_WRITE, params)).one()
        refuse_unless_accepting(write, row.status, row.ended_at)
        named = orjson.loads(row.named) if isinstance(row.named, str) else row.named
        total.add(_written(row.inserted, row.conflicts, write.overwrite, named or []))
    return total


def _written(inserted: int, conflicts: int, overwrite: bool, named: list[Any]) -> Written:
    return Written(
        inserted=int(inserted),
        conflicts=int(conflicts),
        overwritten=int(conflicts) if overwrite else 0,
        conflicting=[
            ConflictingPoint(name=name, step=step, stored=stored, sent=sent)
            for name, step, stored, sent in named
            if stored is not None  # a row another transaction wrote meanwhile: not in view
        ],
    )
