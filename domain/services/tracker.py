from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from domain import schemas
from domain.db import utcnow
from domain.errors import ExperimentNotFound, InvalidTransition, ProfileNotFound, RunNotFound
from domain.models import Experiment, Run
from domain.repositories.metric_writes import MetricWrite, Point
from domain.uow import UnitOfWork
from domain.views import (
    ExperimentDetail,
    ExperimentSummary,
    ExperimentView,
    FinishedRun,
    MetricsRecorded,
    RunView,
)

# Runs of one experiment in one read (its page, a run page's compare list): a producer can
# start any number, and each costs a read about 2 KB.
MAX_RUNS_LISTED = 1_000


async def create_experiment(uow: UnitOfWork, payload: schemas.CreateExperiment) -> ExperimentView:
    if not await uow.profiles.exists(payload.owner_id):
        raise ProfileNotFound(payload.owner_id)
    experiment = await uow.experiments.add(
        Experiment(**payload.model_dump(), status="created", created_at=utcnow())
    )
    result = ExperimentView.model_validate(experiment)
    await uow.commit(result)
    return result


async def list_experiments(
    uow: UnitOfWork, query: schemas.ListExperiments
) -> list[ExperimentSummary]:
    rows = await uow.experiments.list_with_run_counts(
        owner_id=query.owner_id, status=query.state, limit=query.limit
    )
    return [
        ExperimentSummary.model_validate(
            {**ExperimentView.model_validate(e).model_dump(), "run_count": n}
        )
        for e, n in rows
    ]


async def get_experiment(uow: UnitOfWork, experiment_id: int) -> ExperimentDetail:
    """The experiment and its newest MAX_RUNS_LISTED runs (``run_count`` counts them all)."""
    experiment, runs, count = await experiment_with_runs(uow, experiment_id)
    return ExperimentDetail(**experiment.model_dump(), run_count=count, runs=runs)


async def experiment_with_runs(
    uow: UnitOfWork, experiment_id: int
) -> tuple[ExperimentView, list[RunView], int]:
    experiment = await uow.experiments.get(experiment_id)
    if experiment is None:
        raise ExperimentNotFound(experiment_id)
    runs, count = await uow.runs.newest_of(experiment_id, limit=MAX_RUNS_LISTED)
    view = ExperimentView.model_validate(experiment)
    return view, [RunView.model_validate(run) for run in runs], count


async def start_run(uow: UnitOfWork, payload: schemas.StartRun) -> RunView:
    experiment = await uow.experiments.get(payload.experiment_id)
    if experiment is None:
        raise ExperimentNotFound(payload.experiment_id)
    now = utcnow()
    run = await uow.runs.add(
        Run(
            experiment_id=experiment.id,
            seed=payload.seed,
            status="running",
            started_at=now,
            last_activity_at=now,
        )
    )
    await uow.experiments.set_status(experiment.id, "running")
    result = RunView.model_validate(run)
    await uow.commit(result)
    return result


async def finish_run(uow: UnitOfWork, payload: schemas.FinishRun) -> FinishedRun:
    """End a running run. Finishing it again with the same status is a no-op
    (``changed`` is false); with another status it is an ``InvalidTransition``."""
    run = await uow.runs.get_for_update(payload.run_id)
    if run is None:
        raise RunNotFound(payload.run_id)
    if run.status == payload.status:
        result = FinishedRun(run=RunView.model_validate(run), changed=False)
        await uow.commit(result)  # nothing to change but the job's own record
        return result
    if run.status != "running":
        raise InvalidTransition(f"run {run.id} already ended as {run.status!r}")
    run.status = payload.status
    run.ended_at = utcnow()
    run.failure_reason = payload.reason
    await settle_experiments(uow, {run.experiment_id: payload.status})
    result = FinishedRun(run=RunView.model_validate(run), changed=True)
    await uow.commit(result)
    return result


async def settle_experiments(uow: UnitOfWork, ended: dict[int, str]) -> None:
    """An experiment stays running while any run runs; then it takes its last run's outcome."""
    if not ended:
        return
    await uow.runs.flush()
    still_running = await uow.runs.experiment_ids_with_live_runs(list(ended))
    for experiment_id, status in ended.items():
        if experiment_id not in still_running:
            await uow.experiments.set_status(experiment_id, status)


def _metric_write(
    payload: schemas.RecordMetrics | schemas.RecordMetric, points: Sequence[Point]
) -> MetricWrite:
    return MetricWrite(
        run_id=payload.run_id,
        points=points,
        overwrite=payload.on_conflict == "overwrite",
        now=utcnow(),
        late=timedelta(seconds=payload.late_seconds),
    )


async def record_metrics(uow: UnitOfWork, payload: schemas.RecordMetrics) -> MetricsRecorded:
    """Store a batch in one unit of work: each point is new, a duplicate (its step already
    holds that value) or a conflict (another value: kept, unless ``on_conflict`` is
    ``overwrite``), counted apart so that nothing is lost silently.

    A run that ended accepts points for ``late_seconds`` more (a client's buffer landing
    late), then refuses them with ``RunEnded``. A re-delivered job commits nothing twice
    (the job ledger), whatever its policy.
    """
    return await _recorded(uow, _metric_write(payload, payload.points))  # checked dicts


async def _counted(uow: UnitOfWork, write: MetricWrite) -> MetricsRecorded:
    written = await uow.metrics.record(write)
    points = write.points
    result = MetricsRecorded(
        run_id=write.run_id,
        received=len(points),
        inserted=written.inserted,
        duplicates=len(points) - written.inserted - written.conflicts,
        conflicts=written.conflicts,
        overwritten=written.overwritten,
        conflicting=written.conflicting,
    )
    await uow.commit(result)
    return result


async def record_metric(uow: UnitOfWork, payload: schemas.RecordMetric) -> MetricsRecorded:
    """One point is a batch of one: the same statements, the same idempotency."""
    # Already validated: no second pass on the hot path.
    point = schemas.PointFields(
        name=payload.name, step=payload.step, value=payload.value, recorded_at=payload.recorded_at
    )
    return await _recorded(uow, _metric_write(payload, [point]))


async def _recorded(uow: UnitOfWork, write: MetricWrite) -> MetricsRecorded:
    """The usual points are new: written with the job's record in one statement if they
    are, else counted (and written) the usual way."""
    count = len(write.points)
    new = MetricsRecorded(
        run_id=write.run_id,
        received=count,
        inserted=count,
        duplicates=0,
        conflicts=0,
        overwritten=0,
    )
    if await uow.commit_in_one(uow.metrics.new_points(write), new):
        return new
    return await _counted(uow, write)
