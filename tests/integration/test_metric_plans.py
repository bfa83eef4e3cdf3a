"""A metric's history reads the index bucket by bucket whatever the statistics say
(issue 20, item 10): right after an upload, on a table whose statistics were taken while
it was empty (a fresh server, or one without autovacuum), the plan is EXPLAINed, not
timed. Joined, PostgreSQL took the run for a few rows and filtered every point against
every bucket: 40 s for 110,000 points; each bucket's own range of the index is the plan
that does not depend on the statistics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import services
from domain.db import create_session_factory
from domain.metric_queries import MetricHistoryQuery
from domain.uow import SqlAlchemyUnitOfWork
from tests.support.db import add_experiment, add_profile, add_run
from tests.support.rows import store_points

POINTS = 5_000


def nodes(plan: dict[str, Any], parent: str = "") -> Iterator[dict[str, Any]]:
    yield {**plan, "Parent": parent}
    for child in plan.get("Plans", []):
        yield from nodes(child, plan["Node Type"])


async def test_the_downsample_reads_each_bucket_as_a_range_of_the_index_without_statistics(
    emptied_pg_engine: AsyncEngine,
) -> None:
    sessions = create_session_factory(emptied_pg_engine)

    def uow() -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(sessions)

    owner = await add_profile(uow)
    run = await add_run(uow, (await add_experiment(uow, owner.id)).id)
    async with emptied_pg_engine.begin() as connection:
        await connection.execute(text("ANALYZE metrics"))  # statistics of an empty table
    await store_points(sessions, run.id, {step: 1 / (step + 1) for step in range(POINTS)})

    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_rest: Any) -> None:
        if "metrics" in sql and sql.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((sql, parameters))

    query = MetricHistoryQuery(run_ids=[run.id], name="loss", buckets=500)
    event.listen(emptied_pg_engine.sync_engine, "before_cursor_execute", record)
    try:
        async with uow() as reading:
            history = await services.metric_history(reading, query)
    finally:
        event.remove(emptied_pg_engine.sync_engine, "before_cursor_execute", record)
    assert sum(bucket.points for bucket in history.series[0].buckets) == POINTS

    [(sql, parameters)] = sent
    async with emptied_pg_engine.connect() as connection:
        explained = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", parameters)
        found = explained.scalar_one()
        plan = (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]
    scans = [node for node in nodes(plan) if node.get("Relation Name") == "metrics"]
    per_point = [node for node in scans if node["Node Type"] == "Seq Scan"]
    assert per_point == [], "a scan of the whole table"
    # Each scan is a probe (the first or last step: a Limit above it) or a range of the
    # index, the step bounded in its condition; never a scan of the run's points filtered
    # against the buckets afterwards.
    for node in scans:
        if node["Parent"] == "Limit":
            continue
        assert "step" in node.get("Index Cond", ""), json.dumps(node, indent=1)[:2000]
    joins = [node.get("Join Filter", "") for node in nodes(plan)]
    assert not any("step" in condition for condition in joins), joins
