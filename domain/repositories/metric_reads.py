"""Reading metrics back: run summaries, and a metric's history paged or downsampled.

Every query walks the metrics' unique index on (run_id, name, step), which carries the
value too on PostgreSQL (INCLUDE, migration 0003): index-only scans, the table itself
untouched where the visibility map says its pages are all visible.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import Metric, Run
from domain.repositories._sql import dialect_of

_METRICS = cast(Table, Metric.__table__)
_M = _METRICS.c
# PostgreSQL's planner prices these scans of a million index entries above jit_above_cost,
# then spends 0.5 to 1.0 s compiling them (measured) for a query that runs in 0.3 s.
_NO_JIT = text("SET LOCAL jit = off")
ROWS_AT_ONCE = 2_000


class MetricReads:
    """Read-only queries over metrics; the unit of work's transaction gives them one
    snapshot, so pages read in one unit of work agree with each other."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def known_runs(self, run_ids: Sequence[int]) -> set[int]:
        statement = select(Run.id).where(Run.id.in_(run_ids))
        return set((await self.session.scalars(statement)).all())

    async def summaries(self, run_ids: Sequence[int], *, per_run: int) -> list[Row[Any]]:
        """The first ``per_run`` metrics of each run by name, by run then name: run_id,
        name, points, first_step, last_step, min, max, last (the value at last_step), and
        the run's metric_count and run_points (all its metrics and points)."""
        per_name = (
            select(
                _M.run_id,
                _M.name,
                func.count().label("points"),
                func.min(_M.step).label("first_step"),
                func.max(_M.step).label("last_step"),
                func.min(_M.value).label("min"),
                func.max(_M.value).label("max"),
                # Over the groups: each run's metrics, counted and numbered, and its points.
                func.count().over(partition_by=_M.run_id).label("metric_count"),
                func.sum(func.count()).over(partition_by=_M.run_id).label("run_points"),
                func.row_number().over(partition_by=_M.run_id, order_by=_M.name).label("rank"),
            )
            .where(_M.run_id.in_(run_ids))
            .group_by(_M.run_id, _M.name)
            .subquery("per_name")
        )
        last = _value_at(per_name.c.run_id, per_name.c.name, per_name.c.last_step)
        statement = (
            select(per_name, last.label("last"))
            .where(per_name.c.rank <= per_run)
            .order_by(per_name.c.run_id, per_name.c.name)
        )
        return await self._rows(statement)

    async def downsampled(
        self,
        run_ids: Sequence[int],
        name: str,
        buckets: int,
        *,
        first_step: int | None = None,
        last_step: int | None = None,
    ) -> AsyncIterator[Sequence[Row[Any]]]:
        """The runs' points of ``name`` in at most ``buckets`` buckets, by run then bucket:
        run_id, bucket, points, first_step, last_step, min, max, mean, last; a few
        thousand rows at a time, so that turning them into views never holds the event
        loop for long (20,000 rows at once held it 0.2 s, the light reads waiting).

        The step range (the runs' first to last point, within the bounds given) is cut
        into ``buckets`` spans of equal width, the same for every run: bucket i holds the
        steps s with floor((s - lo) * buckets / (hi - lo + 1)) = i. Each span is one range
        of the index, aggregated on its own, so nothing is sorted or hashed per point.
        """
        in_range = [_M.name == name]
        if first_step is not None:
            in_range.append(_M.step >= first_step)
        if last_step is not None:
            in_range.append(_M.step <= last_step)
        edges = _edges(_span(run_ids, in_range), buckets)
        if dialect_of(self.session) == "postgresql":
            per_bucket = _per_bucket_lateral(run_ids, name, edges)
        else:
            per_bucket = _per_bucket_joined(run_ids, name, edges)
        last = _value_at(per_bucket.c.run_id, name, per_bucket.c.last_step)
        statement = select(per_bucket, last.label("last")).order_by(
            per_bucket.c.run_id, per_bucket.c.bucket
        )
        await self._no_jit()
        streamed = await self.session.stream(statement.execution_options(yield_per=ROWS_AT_ONCE))
        async for rows in streamed.partitions():
            yield rows

    async def page(self, run_id: int, name: str, after_step: int, limit: int) -> list[Row[Any]]:
        """Up to ``limit`` points (step, value, recorded_at) after ``after_step``."""
        statement: Select[Any] = (
            select(_M.step, _M.value, _M.recorded_at)
            .where(_M.run_id == run_id, _M.name == name, _M.step > after_step)
            .order_by(_M.step)
            .limit(limit)
        )
        return list((await self.session.execute(statement)).all())

    async def _rows(self, statement: Select[Any]) -> list[Row[Any]]:
        await self._no_jit()
        return list((await self.session.execute(statement)).all())

    async def _no_jit(self) -> None:
        if dialect_of(self.session) == "postgresql":
            await self.session.execute(_NO_JIT)


def _bucket_aggregates() -> tuple[Any, ...]:
    """What each (run, bucket) of a history reports, whichever way it is read."""
    return (
        func.count().label("points"),
        func.min(_M.step).label("first_step"),
        func.max(_M.step).label("last_step"),
        func.min(_M.value).label("min"),
        func.max(_M.value).label("max"),
        func.avg(_M.value).label("mean"),
    )


def _per_bucket_lateral(run_ids: Sequence[int], name: str, edges: Any) -> Any:
    """Each (run, bucket) aggregated by its own range scan of the index (LATERAL), so the
    plan is the same whatever the statistics say. Joined instead, a table whose statistics
    predate an upload (a fresh server, or one without autovacuum) is taken for a few rows
    per run: PostgreSQL loops over every point and filters it against every bucket, 40 s
    for 110,000 points to 500 buckets, 0.27 s after ANALYZE (measured, issue 20)."""
    each = [select(literal(run_id, BigInteger).label("run_id")) for run_id in run_ids]
    runs_cte = (union_all(*each) if len(each) > 1 else each[0]).cte("runs")
    spans = (
        select(*_bucket_aggregates())
        .where(
            _M.run_id == runs_cte.c.run_id,
            _M.name == name,
            _M.step >= edges.c.start_step,
            _M.step < edges.c.end_step,
        )
        .lateral("span_points")
    )
    return (
        select(runs_cte.c.run_id, edges.c.bucket, *spans.c)
        .select_from(runs_cte.join(edges, true()).join(spans, true()))
        .where(spans.c.points > 0)
        .subquery("per_bucket")
    )


def _per_bucket_joined(run_ids: Sequence[int], name: str, edges: Any) -> Any:
    """The same, as one join: for SQLite (the demo's), which has no LATERAL."""
    return (
        select(
            _M.run_id,
            edges.c.bucket,
            *_bucket_aggregates(),
        )
        .select_from(edges)
        .join(
            _METRICS,
            and_(
                _M.run_id.in_(run_ids),
                _M.name == name,
                _M.step >= edges.c.start_step,
                _M.step < edges.c.end_step,
            ),
        )
        .group_by(_M.run_id, edges.c.bucket)
        .subquery("per_bucket")
    )


def _span(run_ids: Sequence[int], in_range: list[ColumnElement[bool]]) -> Any:
    """The lowest and highest step of the runs' points: per run, the first and the last
    entry of its range of the index (ORDER BY step LIMIT 1, both ways), two probes whatever
    the statistics say; min() and max() over a table taken for empty scan the range."""

    def end(run_id: int, step: Any) -> Any:
        return (
            select(_M.step).where(_M.run_id == run_id, *in_range).order_by(step).limit(1)
        ).scalar_subquery()

    per_run = [
        select(end(run_id, _M.step).label("lo"), end(run_id, _M.step.desc()).label("hi"))
        for run_id in run_ids
    ]
    each = (union_all(*per_run) if len(per_run) > 1 else per_run[0]).subquery("per_run")
    span = select(func.min(each.c.lo).label("lo"), func.max(each.c.hi).label("hi")).cte("span")
    # Computed once: inlined, PostgreSQL may probe the span again for every point it joins
    # when a young table has no statistics yet (3.2 s for 1,500 points, measured).
    return span.prefix_with("MATERIALIZED", dialect="postgresql")


def _edges(span: Any, buckets: int) -> Any:
    """Bucket i's steps: [lo + ceil(i * width / n), lo + ceil((i + 1) * width / n))."""
    n = bindparam("buckets", buckets, type_=BigInteger)
    numbers = select(literal_column("0").label("i")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.i + 1).where(numbers.c.i + 1 < n))
    # 64-bit: (hi - lo + 1) * buckets passes 2**31 as soon as the steps do.
    width = span.c.hi.cast(BigInteger) - span.c.lo + 1

    def start(i: Any) -> Any:
        return span.c.lo + (width * i + n - 1) // n

    return (
        select(
            numbers.c.i.label("bucket"),
            start(numbers.c.i).label("start_step"),
            start(numbers.c.i + 1).label("end_step"),
        )
        .select_from(span.join(numbers, true()))  # one row of span: a cross join
        .cte("edges")
    )


def _value_at(run_id: Any, name: Any, step: Any) -> Any:
    point = _METRICS.alias("point")
    return (
        select(point.c.value)
        .where(point.c.run_id == run_id, point.c.name == name, point.c.step == step)
        .scalar_subquery()
    )
