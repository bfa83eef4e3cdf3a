"""Reading the tracker back: a run's summary, an experiment's runs with theirs, and a
metric's history, paged or downsampled. Plain functions of a unit of work that return
views, ready to be served as JSON; none of them writes or commits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

from domain.errors import ExperimentNotFound, RunNotFound
from domain.metric_queries import MetricHistoryQuery, MetricPageQuery
from domain.uow import UnitOfWork
from domain.views import (
    ExperimentRuns,
    ExperimentView,
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
    """The run, and each of its metrics: point count, first and last step, last value,
    min and max."""
    run = await uow.runs.get(run_id)
    if run is None:
        raise RunNotFound(run_id)
    (summary,) = await _summaries(uow, [RunView.model_validate(run)])
    return summary


async def experiment_runs(uow: UnitOfWork, experiment_id: int) -> ExperimentRuns:
    """The experiment and its runs, each with its metrics' summaries (one query for all)."""
    experiment = await uow.experiments.get_with_runs(experiment_id)
    if experiment is None:
        raise ExperimentNotFound(experiment_id)
    runs = await _summaries(uow, [RunView.model_validate(run) for run in experiment.runs])
    return ExperimentRuns(**ExperimentView.model_validate(experiment).model_dump(), runs=runs)


async def metric_history(uow: UnitOfWork, query: MetricHistoryQuery) -> MetricHistory:
    """The metric of each run, downsampled to at most ``query.buckets`` buckets with the
    same step spans for every run (so that runs can be compared bucket by bucket)."""
    await _known(uow, query.run_ids)
    rows = await uow.metric_reads.downsampled(
        query.run_ids,
        query.name,
        query.buckets,
        first_step=query.first_step,
        last_step=query.last_step,
    )
    by_run = {run_id: [_bucket(row) for row in rows] for run_id, rows in _by_run(rows)}
    buckets = [bucket for series in by_run.values() for bucket in series]
    return MetricHistory(
        name=query.name,
        buckets=query.buckets,
        first_step=min((b.first_step for b in buckets), default=None),
        last_step=max((b.last_step for b in buckets), default=None),
        series=[MetricSeries(run_id=r, buckets=by_run.get(r, [])) for r in query.run_ids],
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
    rows = await uow.metric_reads.summaries([run.id for run in runs]) if runs else []
    metrics = {
        run_id: [MetricSummary.model_validate(row, from_attributes=True) for row in rows]
        for run_id, rows in _by_run(rows)
    }
    return [
        RunSummary(
            **run.model_dump(),
            points=sum(m.points for m in metrics.get(run.id, [])),
            metrics=metrics.get(run.id, []),
        )
        for run in runs
    ]


async def _known(uow: UnitOfWork, run_ids: Sequence[int]) -> None:
    missing = sorted(set(run_ids) - await uow.metric_reads.known_runs(run_ids))
    if missing:
        raise RunNotFound(", ".join(map(str, missing)))


def _by_run(rows: Sequence[Any]) -> Iterator[tuple[int, list[Any]]]:
    """Rows ordered by run, grouped by it."""
    return ((run_id, list(group)) for run_id, group in groupby(rows, key=lambda r: r.run_id))


def _bucket(row: Any) -> MetricBucket:
    return MetricBucket.model_validate(row, from_attributes=True)
