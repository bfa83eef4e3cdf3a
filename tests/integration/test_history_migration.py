"""The upgrade to the partitioned history on a populated database: every row of the table
it replaces is there after it, reads work and use their indexes, and the downgrade gives
every row back.

Sync on purpose: Alembic's env.py runs its own event loop with asyncio.run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from domain.db import create_engine, create_session_factory
from domain.repositories import JobRecordRepository
from worker.testing import migrate as schema
from worker.testing import scratch

# Run once with 100,000 (38 s on 2 busy cores): most of the time is the indexes built
# concurrently on each of the 36 days, whatever their size.
ROWS = 20_000
BEFORE = "0004"
# 0003's tables. Jobs over the last 40 days (older than the migration's 31 days of
# partitions too); one in fifty retried once, its try kept; one in a hundred failed.
_SEED = [
    """
    INSERT INTO job_records (job_id, function, status, parent_id, tries, started_at,
        finished_at, duration_ms, payload)
    SELECT 'job-' || i, 'function_' || i % 7,
           CASE WHEN i % 100 = 0 THEN 'failed' WHEN i % 50 = 1 THEN 'retrying'
                ELSE 'succeeded' END,
           CASE WHEN i % 3 = 0 THEN 'parent-' || i / 300 END, 1 + (i % 50 = 1)::int,
           now() - i * interval '1 minute' * 40 * 1440 / :rows,
           now() - i * interval '1 minute' * 40 * 1440 / :rows + interval '1 second',
           1000, CASE WHEN i % 100 = 0 THEN json_build_object('i', i) END
    FROM generate_series(1, :rows) AS i
    """,
    """
    INSERT INTO job_tries (job_id, try_number, started_at, finished_at, duration_ms,
        error_type)
    SELECT job_id, 1, started_at, finished_at, 1000, 'Timeout'
    FROM job_records WHERE status = 'retrying'
    """,
]
# What must survive both ways: every row's columns of 0003, in one digest.
_DIGEST = {
    "job_records": """
        SELECT count(*), md5(string_agg(concat_ws('|', job_id, function, status, parent_id,
            tries, duplicates, payload::text, started_at, finished_at, duration_ms,
            handled_at), ',' ORDER BY job_id)) FROM job_records
    """,
    "job_tries": """
        SELECT count(*), md5(string_agg(concat_ws('|', job_id, try_number, started_at,
            finished_at, error_type), ',' ORDER BY job_id, try_number)) FROM job_tries
    """,
}


@pytest.fixture
def populated() -> Iterator[str]:
    """A PostgreSQL database at revision 0003 holding ``ROWS`` jobs; its URL."""
    name = asyncio.run(scratch.create_database())
    url = scratch.database_url(name)
    try:
        command.upgrade(schema.alembic_config(url), BEFORE)
        asyncio.run(_run(url, _seed))
        yield url
    finally:
        asyncio.run(scratch.drop_database(name))


async def _run(url: str, work: Any) -> Any:
    engine = create_engine(url, pool_size=1)
    try:
        async with create_session_factory(engine)() as session:
            found = await work(session)
            await session.commit()
            return found
    finally:
        await engine.dispose()


async def _seed(session: Any) -> None:
    for statement in _SEED:
        await session.execute(text(statement), {"rows": ROWS})


async def _digests(session: Any) -> dict[str, tuple[int, str]]:
    return {
        table: tuple((await session.execute(text(sql))).one()) for table, sql in _DIGEST.items()
    }


async def _reads(session: Any) -> dict[str, Any]:
    jobs = JobRecordRepository(session)
    failed = await jobs.get("job-100")
    partitions = await session.scalar(
        text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'job_records'::regclass")
    )
    invalid = await session.scalar(
        text(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "WHERE c.relname LIKE 'job_records%' AND NOT i.indisvalid"
        )
    )
    return {
        "failed": (failed.status, failed.payload) if failed else None,
        "tries": [t.try_number for t in await jobs.tries_of("job-1")],
        "recent": len(await jobs.list_recent(status="succeeded", function=None, limit=20)),
        "unhandled": len(await jobs.list_failed(2_000)),
        "partitions": partitions,
        "invalid indexes": invalid,
    }


def test_the_upgrade_keeps_every_row_and_the_downgrade_gives_them_back(populated: str):
    config = schema.alembic_config(populated)
    before = asyncio.run(_run(populated, _digests))
    assert before["job_records"][0] == ROWS

    command.upgrade(config, "head")
    assert asyncio.run(_run(populated, _digests)) == before
    reads = asyncio.run(_run(populated, _reads))
    assert reads["failed"] == ("failed", {"i": 100})
    assert reads["tries"] == [1]
    assert (reads["recent"], reads["unhandled"]) == (20, ROWS // 100)
    assert reads["partitions"] >= 32  # a day each back to 31 days, the days ahead, default
    assert reads["invalid indexes"] == 0
    command.check(config)

    command.downgrade(config, BEFORE)
    assert asyncio.run(_run(populated, _digests)) == before
