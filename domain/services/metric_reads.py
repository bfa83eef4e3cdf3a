"""Reading the tracker back: a run's summary, an experiment's runs with theirs, and a
metric's history, paged or downsampled. Plain functions of a unit of work that return
views, ready to be served as JSON; none of them writes or commits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

from domain.errors import RunNotFound
from domain.metric_queries import MetricHistoryQuery, MetricPageQuery
from domain.services.tracker import experiment_with_runs
from domain.uow import UnitOfWork
from domain.views import (
    ExperimentRuns,
    MetricBucket,
    MetricHistory,
    MetricPage,
    MetricPointView,
    MetricSeries,
    MetricSummary,
    RunSummary,
    RunView,
)


async def run_summary(uow: UnitOfWork, run_id: int) -> RunSummary:
    """The run, and each of its metrics (the first MAX_METRICS_LISTED by name): point
    count, first and last step, last value, min and max."""
    run = await uow.runs.get(run_id)
    if run is None:
        raise RunNotFound(run_id)
    (summary,) = await _summaries(uow, [RunView.model_validate(run)])
    return summary


async def experiment_runs(uow: UnitOfWork, experiment_id: int) -> ExperimentRuns:
    """The experiment and its newest runs, each with its metrics' summaries (one query for
    all, MAX_SUMMARIES at most, shared out among the runs)."""
    experiment, runs, count = await experiment_with_runs(uow, experiment_id)
    summaries = await _summaries(uow, runs)
    return ExperimentRuns(**experiment.model_dump(), run_count=count, runs=summaries)


# Metric summaries in one read. A producer can record any number of metric names in a
# run; each summary costs a read about 1 KB. A run shows its first MAX_METRICS_LISTED by
# name; an experiment's runs share out MAX_SUMMARIES (1,000 runs: 10 each).
MAX_METRICS_LISTED = 1_000
MAX_SUMMARIES = 10_000


async def metric_history(uow: UnitOfWork, query: MetricHistoryQuery) -> MetricHistory:
    """The metric of each run, downsampled to at most ``query.buckets`` buckets with the
    same step spans for every run (so that runs can be compared bucket by bucket)."""
    await _known(uow, query.run_ids)
    by_run: dict[int, list[MetricBucket]] = {run_id: [] for run_id in query.run_ids}
    async for rows in uow.metric_reads.downsampled(
        query.run_ids,
        query.name,
        query.buckets,
        first_step=query.first_step,
        last_step=query.last_step,
    ):
        for row in rows:
            by_run[row.run_id].append(_bucket(row))
    buckets = [bucket for series in by_run.values() for bucket in series]
    return MetricHistory(
        name=query.name,
        buckets=query.buckets,
        first_step=min((b.first_step for b in buckets), default=None),
        last_step=max((b.last_step for b in buckets), default=None),
        series=[MetricSeries(run_id=r, buckets=by_run[r]) for r in query.run_ids],
    )


async def metric_page(uow: UnitOfWork, query: MetricPageQuery) -> MetricPage:
    """Up to ``query.limit`` points after ``query.after_step``; ``next_after`` continues."""
    await _known(uow, [query.run_id])
    rows = await uow.metric_reads.page(query.run_id, query.name, query.after_step, query.limit + 1)
    more = len(rows) > query.limit
    points = [MetricPointView.model_validate(row, from_attributes=True) for row in rows]
    points = points[: query.limit]
    return MetricPage(
        run_id=query.run_id,
        name=query.name,
        points=points,
        next_after=points[-1].step if more else None,
    )


async def _summaries(uow: UnitOfWork, runs: Sequence[RunView]) -> list[RunSummary]:
    per_run = min(MAX_METRICS_LISTED, MAX_SUMMARIES // max(1, len(runs)))
    ids = [run.id for run in runs]
    rows = await uow.metric_reads.summaries(ids, per_run=per_run) if runs else []
    grouped = dict(_by_run(rows))
    return [_summary(run, grouped.get(run.id, [])) for run in runs]


def _summary(run: RunView, rows: Sequence[Any]) -> RunSummary:
    return RunSummary(
        **run.model_dump(),
        points=int(rows[0].run_points) if rows else 0,
        metric_count=rows[0].metric_count if rows else 0,
        metrics=[MetricSummary.model_validate(row, from_attributes=True) for row in rows],
    )


async def _known(uow: UnitOfWork, run_ids: Sequence[int]) -> None:
    missing = sorted(set(run_ids) - await uow.metric_reads.known_runs(run_ids))
    if missing:
        raise RunNotFound(", ".join(map(str, missing)))


def _by_run(rows: Sequence[Any]) -> Iterator[tuple[int, list[Any]]]:
    """Rows ordered by run, grouped by it."""
    return ((run_id, list(group)) for run_id, group in groupby(rows, key=lambda r: r.run_id))


def _bucket(row: Any) -> MetricBucket:
    return MetricBucket.model_validate(row, from_attributes=True)
