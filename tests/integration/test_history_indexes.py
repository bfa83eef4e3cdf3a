"""Every query the job history runs can use its index, so the history stays fast as it grows.

Each repository method runs once on the migrated schema while its statements are
captured; each statement is then prepared and EXPLAINed with its own parameters, with
sequential scans priced out (``enable_seqscan = off``): a plan that still scans a job table
sequentially, or that does without the index meant for the query, has no index to use.
Both the plan for the parameters' values and the generic plan PostgreSQL may reuse for a
prepared statement are checked. bench/history.py times the same queries on a million rows.

The history is partitioned by day: the seed lies in day partitions made for it, and the
plans scan partitions, each by its own copy of the table's index (named back to it).
The retention (``forget_before``) is not here: it drops days whole, and deletes rows only
in the default partition, which holds few (the unhandled failures of dropped days).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from domain.db import create_session_factory
from domain.history_queries import is_known, job_standing
from domain.models import JobRecord, JobTry
from domain.progress_queries import results_statement, submission_of
from domain.repositories import JobRecordRepository, JobStamp
from domain.repositories.history_partitions import day_name, default_name, is_partition
from tests.support.plans import PLAN_MODES, captured, explain, nodes

HISTORY_TABLES = (JobRecord.__tablename__, JobTry.__tablename__)
INDEX_NODES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
NOW = datetime(2026, 11, 29, tzinfo=UTC)
STAMP = JobStamp("job-1", "record_metrics", 2, NOW, worker="w1", parent_id="parent-1")

Call = Callable[[JobRecordRepository], Awaitable[object]]


@dataclass(frozen=True)
class Query:
    call: Call
    index: str  # the index meant to serve it
    # Another that serves it as well: the planner picks between them by the values.
    or_index: str | None = None

    @property
    def indexes(self) -> tuple[str, ...]:
        return (self.index, self.or_index) if self.or_index else (self.index,)


QUERIES: dict[str, Query] = {
    "get": Query(lambda jobs: jobs.get("job-1"), "pk_job_records"),
    # A job id as typed, a job's or a submission's (`dbjobs status ID`, the API's routes).
    "is_known": Query(lambda jobs: is_known(jobs.rows, "job-1"), "pk_job_records"),
    # The record `dbjobs status` shows of a job Redis has forgotten, and whether it has jobs.
    "job_standing": Query(lambda jobs: job_standing(jobs.rows, "job-1"), "pk_job_records"),
    "tries_of": Query(lambda jobs: jobs.tries_of("job-1"), "pk_job_tries"),
    # A submission's jobs by state, its first failures, a page of its results after another.
    "submission": Query(
        lambda jobs: submission_of(jobs.rows, "parent-1"),
        "ix_job_records_parent_status_finished_at",
    ),
    "a page of a submission's results": Query(
        lambda jobs: jobs.rows(results_statement("parent-1", (NOW, "j"), 500)),
        "ix_job_records_parent_status_finished_at",
    ),
    "children_of": Query(
        lambda jobs: jobs.children_of("parent-1", status="failed", limit=5),
        "ix_job_records_parent_status_finished_at",
    ),
    "list_recent": Query(
        lambda jobs: jobs.list_recent(status=None, function=None, limit=20),
        "ix_job_records_finished_at",
    ),
    "list_recent by status": Query(
        lambda jobs: jobs.list_recent(status="failed", function=None, limit=20),
        "ix_job_records_status_finished_at",
    ),
    # Nearly every row is a success: the finished_at index finds them, and the status
    # index keeps only the other states.
    "list_recent of successes": Query(
        lambda jobs: jobs.list_recent(status="succeeded", function=None, limit=20),
        "ix_job_records_finished_at",
    ),
    "list_recent by function": Query(
        lambda jobs: jobs.list_recent(status=None, function="record_metrics", limit=20),
        "ix_job_records_function_finished_at",
    ),
    "list_recent, a later page": Query(
        lambda jobs: jobs.list_recent(status=None, function=None, limit=20, before=(NOW, "j")),
        "ix_job_records_finished_at",
    ),
    "list_recent by status, a later page": Query(
        lambda jobs: jobs.list_recent(status="failed", function=None, limit=20, before=(NOW, "j")),
        "ix_job_records_status_finished_at",
    ),
    "list_recent by function, a later page": Query(
        lambda jobs: jobs.list_recent(
            status=None, function="record_metrics", limit=20, before=(NOW, "j")
        ),
        "ix_job_records_function_finished_at",
    ),
    "count_since": Query(lambda jobs: jobs.count_since(NOW), "ix_job_records_finished_at"),
    "finished_per_bucket": Query(
        lambda jobs: jobs.finished_per_bucket(NOW, 60), "ix_job_records_finished_at"
    ),
    "list_failed": Query(lambda jobs: jobs.list_failed(20), "ix_job_records_unhandled_failures"),
    "mark_handled some": Query(
        lambda jobs: jobs.mark_handled(["job-1", "job-2"]),
        "pk_job_records",
        or_index="ix_job_records_unhandled_failures",
    ),
    "mark_handled all": Query(
        lambda jobs: jobs.mark_handled(None), "ix_job_records_unhandled_failures"
    ),
    "record_success": Query(lambda jobs: jobs.record_success(STAMP), "pk_job_records"),
    "record_retry": Query(
        lambda jobs: jobs.record_retry(
            STAMP, error_type="E", message="m", payload=None, retry_at=NOW
        ),
        "pk_job_records",
    ),
    "record_failure": Query(
        lambda jobs: jobs.record_failure(STAMP, error_type="E", message="m", payload=None),
        "pk_job_records",
    ),
    "count_duplicate": Query(lambda jobs: jobs.count_duplicate("job-1"), "pk_job_records"),
    "cancel": Query(lambda jobs: jobs.cancel("job-1", "record_metrics"), "pk_job_records"),
}


@dataclass(frozen=True)
class Plans:
    """What the plans of one call's statements scan."""

    indexes: list[str]
    seq_scans: list[str]

    def missing(self, wanted: tuple[str, ...]) -> str | None:
        """Why the call cannot count on one of the ``wanted`` indexes; None when it can."""
        if self.seq_scans:
            return f"sequential scan on {', '.join(self.seq_scans)}"
        if not set(wanted) & set(self.indexes):
            return f"{' or '.join(wanted)} unused; the plans use {self.indexes or 'no index'}"
        return None


# A history shaped like a real one, small: the planner picks among indexes by statistics,
# and on empty tables a status filter looks as selective as a parent's id. Per 100 jobs:
# 95 successes, 3 failures (2 handled), 1 retrying (with a try), 1 cancelled; 20 functions;
# half the jobs children of submissions of 100 jobs that end together.
_SEED = [
    """
    INSERT INTO job_records (job_id, function, status, parent_id, tries, enqueued_at,
        started_at, finished_at, duration_ms, handled_at)
    SELECT 'seeded-' || i, 'function_' || i % 20,
           CASE WHEN i % 100 < 95 THEN 'succeeded' WHEN i % 100 < 98 THEN 'failed'
                WHEN i % 100 < 99 THEN 'retrying' ELSE 'cancelled' END,
           CASE WHEN i % 1000 < 500 THEN 'parent-' || i / 100 END, 1,
           CAST(:now AS timestamptz) - i * interval '15 seconds',
           CAST(:now AS timestamptz) - i * interval '15 seconds',
           CAST(:now AS timestamptz) - i * interval '15 seconds', 0,
           CASE WHEN i % 100 IN (95, 96) THEN CAST(:now AS timestamptz) END
    FROM generate_series(1, :rows) AS i
    """,
    """
    INSERT INTO job_tries (job_id, enqueued_at, try_number, started_at, finished_at,
        duration_ms)
    SELECT job_id, enqueued_at, 1, started_at, finished_at, 0
    FROM job_records WHERE status = 'retrying'
    """,
    "ANALYZE job_records, job_tries",
]
SEEDED_ROWS = 10_000
# Two days and a half: each day is a partition made for the test, in its transaction.
SEEDED_DAYS = (NOW - timedelta(seconds=15 * SEEDED_ROWS)).date(), NOW.date()
# A partition's index, by the table's index it is a copy of.
_PARENT_INDEXES = """
SELECT c.relname, p.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE c.relkind = 'i'
"""


@pytest.fixture(scope="module")
async def seeded(pg_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """One transaction on a seeded history of PostgreSQL (whose plans these are), rolled
    back when the module ends: the seed and its days go with it. Seeded once: it took
    more time than all the plans together."""
    async with create_session_factory(pg_engine)() as session:
        await JobRecordRepository(session).make_days(*SEEDED_DAYS)
        for statement in _SEED:
            await session.execute(text(statement), {"now": NOW, "rows": SEEDED_ROWS})
        yield session
        await session.rollback()


@pytest.fixture
async def session(seeded: AsyncSession) -> AsyncIterator[AsyncSession]:
    """The seeded history in a savepoint of the test's own, rolled back: what the calls
    write, any index dropped and every setting go with it."""
    savepoint = await seeded.begin_nested()
    await seeded.execute(text("SET LOCAL enable_seqscan = off"))
    yield seeded
    await savepoint.rollback()


async def plans_of(session: AsyncSession, engine: AsyncEngine, call: Call, mode: str) -> Plans:
    with captured(engine) as sent:
        await call(JobRecordRepository(session))
    assert sent, "the call sent no statement"
    connection = await session.connection()
    await connection.exec_driver_sql(f"SET LOCAL plan_cache_mode = {mode}")
    parents: dict[str, str] = dict((await session.execute(text(_PARENT_INDEXES))).all())
    indexes: list[str] = []
    seq_scans: list[str] = []
    for number, (sql, parameters) in enumerate(sent):
        for node in nodes(await explain(session, f"history_{number}", sql, parameters)):
            indexes += [parents.get(name, name) for name in _indexes_of(node)]
            if node["Node Type"] == "Seq Scan" and _is_history(node["Relation Name"]):
                seq_scans.append(node["Relation Name"])
    return Plans(indexes, seq_scans)


def _is_history(relation: str) -> bool:
    return relation in HISTORY_TABLES or is_partition(relation)


def _indexes_of(node: dict[str, Any]) -> list[str]:
    """The job tables' indexes a plan node scans, or checks an ON CONFLICT against."""
    names = list(node.get("Conflict Arbiter Indexes", []))
    if node["Node Type"] in INDEX_NODES:
        names.append(node["Index Name"])
    return [name for name in names if any(table in name for table in HISTORY_TABLES)]


async def test_the_seeded_history_lies_in_day_partitions(session: AsyncSession):
    """The plans below are plans over partitions: the seed is in its days, none in the
    default partition."""
    first_day = day_name("job_records", SEEDED_DAYS[0])
    default = default_name("job_records")
    assert await session.scalar(text(f"SELECT count(*) FROM {first_day}")) > 0
    assert await session.scalar(text(f"SELECT count(*) FROM {default}")) == 0


@pytest.mark.parametrize("mode", PLAN_MODES)
@pytest.mark.parametrize("name", QUERIES)
async def test_every_history_query_uses_its_index(
    session: AsyncSession, pg_engine: AsyncEngine, name: str, mode: str
):
    query = QUERIES[name]
    plans = await plans_of(session, pg_engine, query.call, mode)
    assert plans.missing(query.indexes) is None, plans.missing(query.indexes)


def _secondary_indexes() -> list[str]:
    return sorted(
        str(index.name) for table in (JobRecord, JobTry) for index in table.__table__.indexes
    )


def _only_served_by(index: str) -> list[Query]:
    return [query for query in QUERIES.values() if query.indexes == (index,)]


def test_every_index_of_the_history_is_the_only_one_for_some_query():
    assert [index for index in _secondary_indexes() if not _only_served_by(index)] == []


@pytest.mark.parametrize("index", _secondary_indexes())
async def test_dropping_an_index_fails_the_check(
    session: AsyncSession, pg_engine: AsyncEngine, index: str
):
    """The check can fail: without any one of the indexes, some query has nothing to use."""
    await session.execute(text(f"DROP INDEX {index}"))
    for query in _only_served_by(index):
        plans = await plans_of(session, pg_engine, query.call, "force_custom_plan")
        assert plans.missing(query.indexes) is not None
