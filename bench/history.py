"""The job history at scale: every query it runs, timed on a large seeded history, and
whether PostgreSQL's plan for it uses an index.

The history is seeded with one INSERT .. SELECT over generate_series (ORM objects would
take minutes): ~95% successes over the last 14 days, ~3% failures, ~1% retrying and ~1%
cancelled jobs, earlier tries in ``job_tries``, about half the jobs children of ~2,000
submissions of 1 to 500 jobs, 20 functions of skewed popularity. One failure in a
hundred is still unhandled: operators handle them, and the prune keeps failures, so the
handled ones pile up. Each query then runs through the domain's own repository and
use-case code, on a fresh unit of work per call; statements that write are rolled back,
so every call sees the same history. A query whose plan (for the call's own values)
scans job_records or job_tries without an index is MISSED;
tests/integration/test_history_indexes.py checks the generic plans as well.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import md5
from typing import Any, cast

import asyncpg
from sqlalchemy import event

from bench.context import Bench
from bench.measure import Row
from bench.services import truncate_tables
from domain import services
from domain.progress_queries import FAILURES_SHOWN, MAX_SUMMED, states_statement
from domain.repositories import JobStamp
from domain.uow import SqlAlchemyUnitOfWork

DAYS = 14
# The prune keeps 13 of the 14 seeded days: it deletes a day of successes, as the daily
# cron job does once the history is full.
PRUNE_KEEP_DAYS = 13
WARMUP_CALLS = 2  # the first calls prepare the statements on the pool's connections
TIMED_CALLS = 9
PAGE = 20  # what `dbjobs list` and `dbjobs failed` show by default
FOLLOW_PAGE = 100  # what `jobs follow` reads when a generation stalls
HISTORY_TABLES = ("job_records", "job_tries")
INDEX_NODES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")

# Children: rows come in blocks of 500 in time order (a submission's jobs end together);
# the first 1 to 500 rows of block b are the children of submission-b.
SEED_RECORDS = """
WITH drawn AS (
    SELECT i,
           abs(hashtext('status' || i)) % 100 AS roll,
           floor(sqrt(abs(hashtext('function' || i)) % 400))::int AS fn,
           (i - 1) / 500 AS block,
           (i - 1) % 500 <= abs(hashtext('children' || (i - 1) / 500)) % 500 AS is_child,
           abs(hashtext('duration' || i)) % 2000 AS duration_ms,
           $2::timestamptz - ($1 - i) * $3::interval AS finished_at
    FROM generate_series(1, $1) AS i
), shaped AS (
    SELECT *,
           CASE WHEN roll < 95 THEN 'succeeded' WHEN roll < 98 THEN 'failed'
                WHEN roll < 99 THEN 'retrying' ELSE 'cancelled' END AS status
    FROM drawn
)
INSERT INTO job_records (job_id, function, status, parent_id, tries, duplicates, payload,
    result, error_type, error_message, retryable, worker, started_at, finished_at,
    duration_ms, next_retry_at, handled_at{key})
SELECT md5(i::text),
       'function_' || lpad(fn::text, 2, '0'),
       status,
       CASE WHEN is_child THEN 'submission-' || block END,
       CASE status WHEN 'failed' THEN 3 WHEN 'retrying' THEN 1 + i % 3 WHEN 'cancelled' THEN 0
                   ELSE 1 + (roll = 0)::int END,
       0,
       json_build_object('run_id', i, 'points', 1000),
       CASE WHEN status = 'succeeded'
            THEN json_build_object('inserted', 1000, 'duplicates', 0) END,
       CASE WHEN status IN ('failed', 'retrying') THEN 'RuntimeError' END,
       CASE WHEN status IN ('failed', 'retrying') THEN 'bench failure ' || i END,
       CASE WHEN status = 'failed' THEN i % 5 <> 0 END,
       'worker-' || i % 4,
       finished_at - duration_ms * interval '1 millisecond',
       finished_at,
       duration_ms,
       CASE WHEN status = 'retrying' THEN finished_at + interval '10 seconds' END,
       CASE WHEN status = 'failed' AND abs(hashtext('handled' || i)) % 100 <> 0
            THEN finished_at + interval '1 hour' END{key_value}
FROM shaped
"""
# Every try that ended in a retry: all but the last of a finished job, all of a retrying one.
SEED_TRIES = """
INSERT INTO job_tries (job_id, try_number, worker, started_at, finished_at, duration_ms,
    error_type, error_message, retry_at{key})
SELECT r.job_id, t, r.worker,
       r.started_at - (r.tries - t + 1) * interval '1 minute',
       r.started_at - (r.tries - t + 1) * interval '1 minute' + interval '1 second',
       1000, 'RuntimeError', 'bench retry ' || t,
       r.started_at - (r.tries - t) * interval '1 minute'{tries_key_value}
FROM job_records AS r,
     generate_series(1, r.tries - 1 + (r.status = 'retrying')::int) AS t
WHERE r.tries > 1 OR r.status = 'retrying'
"""


# The partition key of the history since migration 0005: the job's first start
# stands for its enqueue time. ``{}`` for the history before it (bench/retention.py).
PARTITIONED = {
    "key": ", enqueued_at",
    "key_value": ", finished_at - duration_ms * interval '1 millisecond'",
    "tries_key_value": ", r.enqueued_at",
}
UNPARTITIONED = dict.fromkeys(PARTITIONED, "")
# Tables, their partitions if any (a partitioned table has no storage of its own), indexes.
HISTORY_MEGABYTES = """
SELECT sum(pg_total_relation_size(oid)) / 1e6 FROM pg_class
WHERE relname IN ('job_records', 'job_tries') OR oid IN (
    SELECT inhrelid FROM pg_inherits
    WHERE inhparent IN (CAST('job_records' AS regclass), CAST('job_tries' AS regclass)))
"""


async def make_history_days(bench: Bench, now: datetime, days: int) -> None:
    """The history's partitions for the ``days`` before ``now``, as the prune makes them ahead."""
    async with bench.unit_of_work() as uow:
        today = now.date()
        await uow.jobs.make_days(today - timedelta(days=days), today + timedelta(days=1))
        await uow.commit()


@dataclass(frozen=True)
class Seeded:
    """What the queries ask for, read back from the seeded history."""

    rows: int
    tries: int
    seconds: float
    megabytes: float
    now: datetime
    job_ids: list[str]  # spread over the history, a different one per call
    retried_job: str  # a retrying job with the most tries
    parent: str  # the submission with the most children
    children: int
    rare_function: str
    unhandled: list[str]  # a few failures nobody has handled
    unhandled_count: int
    prunable: int


Call = Callable[[SqlAlchemyUnitOfWork, int], Awaitable[object]]


@dataclass(frozen=True)
class Probe:
    name: str
    call: Call  # given a fresh unit of work and the call's number


@dataclass(frozen=True)
class Plan:
    """Which indexes and sequential scans the plans of a call's statements name."""

    indexes: list[str]
    seq_scans: list[str]

    @property
    def uses_index(self) -> bool:
        return bool(self.indexes) and not self.seq_scans

    def describe(self) -> str:
        if self.seq_scans:
            return "NO INDEX: " + ", ".join(self.seq_scans)
        return ", ".join(dict.fromkeys(self.indexes)) or "NO INDEX"


async def history(bench: Bench) -> list[Row]:
    await truncate_tables(bench.services)
    try:
        seeded = await seed(bench, bench.sizes.read_rows)
        rows = [_seed_row(seeded)]
        for probe in probes(seeded):
            rows.append(await _measure(bench, probe))
        return rows
    finally:
        await truncate_tables(bench.services)  # the workloads after this one start small


def _seed_row(seeded: Seeded) -> Row:
    return Row(
        f"history: seed {seeded.rows:,} job_records + {seeded.tries:,} job_tries",
        "s",
        [seeded.seconds],
        note=f"INSERT .. SELECT generate_series, VACUUM ANALYZE; {seeded.megabytes:,.0f} MB "
        f"with indexes; biggest submission {seeded.children} jobs",
    )


async def seed(bench: Bench, rows: int) -> Seeded:
    now = datetime.now(UTC)
    await make_history_days(bench, now, DAYS)
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        started = time.perf_counter()
        records = SEED_RECORDS.format(**PARTITIONED)
        await connection.execute(records, rows, now, timedelta(days=DAYS) / rows)
        await connection.execute(SEED_TRIES.format(**PARTITIONED))
        # What autovacuum would have done to a table that grew this large: statistics, and
        # the visibility map that lets index-only scans skip the heap.
        await connection.execute("VACUUM ANALYZE job_records, job_tries")
        seconds = time.perf_counter() - started
        return await _read_back(connection, rows, now, seconds)
    finally:
        await connection.close()


async def _read_back(
    connection: asyncpg.Connection, rows: int, now: datetime, seconds: float
) -> Seeded:
    calls = WARMUP_CALLS + TIMED_CALLS
    parent, children = await connection.fetchrow(
        "SELECT parent_id, count(*) FROM job_records WHERE parent_id IS NOT NULL "
        "GROUP BY parent_id ORDER BY count(*) DESC, parent_id LIMIT 1"
    )
    unhandled = "status = 'failed' AND handled_at IS NULL"
    cutoff = now - timedelta(days=PRUNE_KEEP_DAYS)
    return Seeded(
        rows=rows,
        tries=await connection.fetchval("SELECT count(*) FROM job_tries"),
        seconds=seconds,
        megabytes=await connection.fetchval(HISTORY_MEGABYTES),
        now=now,
        job_ids=[md5(str(1 + n * rows // calls).encode()).hexdigest() for n in range(calls)],
        retried_job=await connection.fetchval(
            "SELECT job_id FROM job_records WHERE status = 'retrying' "
            "ORDER BY tries DESC, job_id LIMIT 1"
        ),
        parent=parent,
        children=children,
        rare_function=await connection.fetchval(
            "SELECT function FROM job_records GROUP BY function ORDER BY count(*), function LIMIT 1"
        ),
        unhandled=[
            r["job_id"]
            for r in await connection.fetch(
                f"SELECT job_id FROM job_records WHERE {unhandled} ORDER BY job_id LIMIT 5"
            )
        ],
        unhandled_count=await connection.fetchval(
            f"SELECT count(*) FROM job_records WHERE {unhandled}"
        ),
        prunable=await connection.fetchval(
            "SELECT count(*) FROM job_records WHERE enqueued_at < $1", cutoff
        ),
    )


def probes(seeded: Seeded) -> list[Probe]:
    """Every query the history runs, each as its repository or use case sends it."""
    return [*_lookups(seeded), *_lists(seeded), *_writes(seeded)]


def _lookups(seeded: Seeded) -> list[Probe]:
    parent, children = seeded.parent, seeded.children
    return [
        Probe("get(job_id), primary key", lambda uow, n: uow.jobs.get(seeded.job_ids[n])),
        Probe(
            "tries_of(job_id), a retrying job",
            lambda uow, n: uow.jobs.tries_of(seeded.retried_job),
        ),
        Probe(
            f"a submission's jobs by state, {children} children",
            lambda uow, n: uow.jobs.rows(states_statement(parent)),
        ),
        Probe(
            f"children_of(parent, failed, limit {FAILURES_SHOWN})",
            lambda uow, n: uow.jobs.children_of(parent, status="failed", limit=FAILURES_SHOWN),
        ),
        Probe(
            f"children_of(parent, succeeded, limit {MAX_SUMMED:,})",
            lambda uow, n: uow.jobs.children_of(parent, status="succeeded", limit=MAX_SUMMED),
        ),
        Probe(
            "get_job(parent) use case: `dbjobs status` of a submission",
            lambda uow, n: services.get_job(uow, parent),
        ),
    ]


def _lists(seeded: Seeded) -> list[Probe]:
    rare = seeded.rare_function

    def recent(status: str | None = None, function: str | None = None) -> Call:
        return lambda uow, n: uow.jobs.list_recent(status=status, function=function, limit=PAGE)

    return [
        Probe(f"list_recent(limit {PAGE})", recent()),
        Probe(f"list_recent(status=failed, limit {PAGE})", recent(status="failed")),
        Probe(f"list_recent(status=retrying, limit {PAGE})", recent(status="retrying")),
        Probe(f"list_recent(function={rare} (rarest), limit {PAGE})", recent(function=rare)),
        Probe(
            f"list_recent(status=failed, function={rare}, limit {PAGE})",
            recent(status="failed", function=rare),
        ),
        Probe(f"list_failed(limit {PAGE})", lambda uow, n: uow.jobs.list_failed(PAGE)),
        Probe(
            f"list_failed(limit {FOLLOW_PAGE}), as `jobs follow` reads it",
            lambda uow, n: uow.jobs.list_failed(FOLLOW_PAGE),
        ),
    ]


def _writes(seeded: Seeded) -> list[Probe]:
    """Rolled back: the unit of work ends without a commit."""
    few = seeded.unhandled

    def stamp(job_id: str) -> JobStamp:
        return JobStamp(job_id=job_id, function="function_00", tries=1, started_at=seeded.now)

    return [
        Probe(
            f"mark_handled({len(few)} ids), rolled back",
            lambda uow, n: uow.jobs.mark_handled(list(few)),
        ),
        Probe(
            f"mark_handled(all: {seeded.unhandled_count:,} rows), rolled back",
            lambda uow, n: uow.jobs.mark_handled(None),
        ),
        Probe(
            "record_success, ledger upsert of a new job, rolled back",
            lambda uow, n: uow.jobs.record_success(stamp(f"bench-new-{n}")),
        ),
        Probe(
            "record_success over a retrying job, rolled back",
            lambda uow, n: uow.jobs.record_success(stamp(seeded.retried_job)),
        ),
    ]


async def _measure(bench: Bench, probe: Probe) -> Row:
    milliseconds: list[float] = []
    for _ in range(bench.runs):
        milliseconds += await _latencies(bench, probe)
    plan = await explain_call(bench, probe)
    return Row(
        f"  {probe.name}",
        "ms",
        milliseconds,
        target="uses an index",
        check=lambda _median: plan.uses_index,
        note=f"{plan.describe()}; median of {len(milliseconds)} calls",
    )


async def _latencies(bench: Bench, probe: Probe) -> list[float]:
    timed = []
    for n in range(WARMUP_CALLS + TIMED_CALLS):
        async with bench.unit_of_work() as uow:
            await uow.session.connection()  # checkout and pre-ping stay out of the timing
            started = time.perf_counter()
            await probe.call(uow, n)
            elapsed = time.perf_counter() - started
        if n >= WARMUP_CALLS:
            timed.append(elapsed * 1000)
    return timed


async def explain_call(bench: Bench, probe: Probe) -> Plan:
    """EXPLAIN every statement one more (rolled back) call sends, with its parameters."""
    async with bench.unit_of_work() as uow:
        with _capture(bench) as sent:
            await probe.call(uow, 0)
    indexes: list[str] = []
    seq_scans: list[str] = []
    async with bench.engine.connect() as connection:
        found = await connection.exec_driver_sql(_PARENT_INDEXES)
        parents: dict[str, str] = dict(cast(Any, found.all()))
        empty = set((await connection.exec_driver_sql(_EMPTY_PARTITIONS)).scalars())
        for sql, parameters in sent:
            result = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", parameters)
            plan = _as_json(result.scalar_one())[0]["Plan"]
            for node in _nodes(plan):
                indexes += [parents.get(name, name) for name in _indexes_of(node)]
                relation = node.get("Relation Name", "")
                # An empty day (ahead, or the default) is read whole: it holds nothing.
                scanned = relation.startswith(HISTORY_TABLES) and relation not in empty
                if node["Node Type"] == "Seq Scan" and scanned:
                    seq_scans.append(f"Seq Scan on {relation}")
    return Plan(indexes, seq_scans)


_EMPTY_PARTITIONS = "SELECT relname FROM pg_class WHERE relispartition AND relpages = 0"
# A day partition's index, by the table's index it is a copy of.
_PARENT_INDEXES = """
SELECT c.relname, p.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE c.relkind = 'i'
"""


@contextmanager
def _capture(bench: Bench) -> Iterator[list[tuple[str, Any]]]:
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_rest: Any) -> None:
        sent.append((sql, parameters))

    event.listen(bench.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(bench.engine.sync_engine, "before_cursor_execute", record)


def _as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _indexes_of(node: dict[str, Any]) -> list[str]:
    """The job-table indexes a plan node scans, or checks an ON CONFLICT against."""
    names = list(node.get("Conflict Arbiter Indexes", []))
    if node["Node Type"] in INDEX_NODES:
        names.append(node["Index Name"])
    return [name for name in names if any(table in name for table in HISTORY_TABLES)]
