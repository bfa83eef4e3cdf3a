"""Every metric read is served by the metrics' unique index, as an index-only scan where it
reads values (the index INCLUDEs value, migration 0003): the plans, custom and generic, of
each read on a seeded PostgreSQL, sequential scans priced out as in
test_history_indexes.py. bench/metric_history.py times the same reads on a million points.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from domain.db import create_session_factory
from domain.repositories import MetricReads
from tests.support.db import empty_tables
from tests.support.plans import PLAN_MODES, captured, explain, nodes
from worker.testing.scratch import TABLE_NAMES

INDEX = "uq_metrics_run_id_name_step"
PLAIN_INDEX = (
    f"ALTER TABLE metrics DROP CONSTRAINT {INDEX}, "
    f"ADD CONSTRAINT {INDEX} UNIQUE (run_id, name, step)"
)
# 10 runs of 2 metrics, 500 steps each, interleaved as concurrent runs write them.
_SEED = [
    "INSERT INTO profiles (username, email, full_name, bio) VALUES ('a', 'a@x.org', 'A', '')",
    "INSERT INTO experiments (owner_id, name, description) SELECT id, 'e', '' FROM profiles",
    "INSERT INTO runs (experiment_id) SELECT id FROM experiments, generate_series(1, 10)",
    """
    INSERT INTO metrics (run_id, name, step, value)
    SELECT runs.id, metric, step, 1.0 / (step + 1)
    FROM generate_series(0, 499) AS step, runs, (VALUES ('loss'), ('accuracy')) AS m(metric)
    """,
    # What autovacuum does to a grown table: statistics, and the visibility map that lets
    # an index-only scan leave the table alone.
    "VACUUM ANALYZE metrics",
]


async def drained(partitions: AsyncIterator[Any]) -> None:
    async for _ in partitions:
        pass


READS = {
    "downsampled": lambda reads, run: drained(reads.downsampled([run], "loss", 500)),
    "downsampled, runs compared": lambda reads, run: drained(
        reads.downsampled([run, run + 1], "loss", 50)
    ),
    "downsampled, a step range": lambda reads, run: drained(
        reads.downsampled([run], "loss", 100, first_step=100, last_step=400)
    ),
    "summaries": lambda reads, run: reads.summaries([run, run + 1], per_run=1000),
    "page": lambda reads, run: reads.page(run, "loss", 500, 100),
}
# What reads only steps and values never visits the table; a page has recorded_at too.
INDEX_ONLY = {"downsampled", "downsampled, runs compared", "downsampled, a step range", "summaries"}


@pytest.fixture(scope="module")
async def seeded(pg_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """PostgreSQL seeded once for the module, committed (VACUUM runs outside a
    transaction); its tables emptied before and after. No test here writes to them."""
    async with pg_engine.begin() as connection:
        await empty_tables(connection, TABLE_NAMES)
    async with pg_engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for statement in _SEED:
            await autocommit.exec_driver_sql(statement)
    yield pg_engine
    async with pg_engine.begin() as connection:
        await empty_tables(connection, TABLE_NAMES)


@pytest.fixture
async def session(seeded: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """One transaction on the seeded tables, rolled back (an index rebuilt goes with it)."""
    async with create_session_factory(seeded)() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        yield session
        await session.rollback()


async def scans(session: AsyncSession, engine: AsyncEngine, read: Any, mode: str) -> list[str]:
    """``Node Type on index`` for each scan of metrics in the plans of the read's queries."""
    run_id = await session.scalar(text("SELECT min(id) FROM runs"))
    with captured(engine) as sent:
        await read(MetricReads(session), run_id)
    connection = await session.connection()
    await connection.exec_driver_sql(f"SET LOCAL plan_cache_mode = {mode}")
    found = []
    for number, (sql, parameters) in enumerate(sent):
        if "metrics" not in sql:
            continue
        for node in nodes(await explain(session, f"metrics_{number}", sql, parameters)):
            if node.get("Relation Name") == "metrics" or "metrics" in node.get("Index Name", ""):
                found.append(f"{node['Node Type']} on {node.get('Index Name', 'metrics')}")
    assert found, "no plan reads metrics"
    return found


@pytest.mark.parametrize("mode", PLAN_MODES)
@pytest.mark.parametrize("name", READS)
async def test_every_metric_read_uses_the_unique_index(session, seeded, name, mode):
    found = await scans(session, seeded, READS[name], mode)
    assert all(scan.endswith(f"on {INDEX}") for scan in found), found
    if name in INDEX_ONLY:
        assert set(found) == {f"Index Only Scan on {INDEX}"}, found


async def test_without_the_value_in_the_index_the_table_is_read(session, seeded):
    """The check can fail: rebuilt without INCLUDE, the downsample visits the table."""
    await session.execute(text(PLAIN_INDEX))
    await session.execute(text("ANALYZE metrics"))
    found = await scans(session, seeded, READS["downsampled"], "force_custom_plan")
    assert set(found) != {f"Index Only Scan on {INDEX}"}, found
