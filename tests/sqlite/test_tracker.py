"""Experiments, runs and metrics on SQLite: idempotent bulk writes, lifecycle, sweeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select, update

from domain import schemas, services
from domain.errors import AlreadyExists, InvalidTransition, RunNotFound
from domain.models import Experiment, Metric, Profile, Run
from domain.views import ExperimentView, RunView
from tests.sqlite.helpers import UowFactory


async def _experiment(uow_factory: UowFactory, name: str = "baseline") -> ExperimentView:
    async with uow_factory() as uow:
        owner = await uow.profiles.count() or None
    if owner is None:
        async with uow_factory() as uow:
            owner = (
                await services.create_profile(
                    uow,
                    schemas.CreateProfile(username="ada", email="a@example.com", full_name="Ada"),
                )
            ).id
    async with uow_factory() as uow:
        return await services.create_experiment(
            uow, schemas.CreateExperiment(owner_id=owner, name=name)
        )


async def _run(uow_factory: UowFactory, experiment_id: int) -> RunView:
    async with uow_factory() as uow:
        return await services.start_run(uow, schemas.StartRun(experiment_id=experiment_id))


def _points(steps: range, name: str = "loss") -> list[schemas.MetricPoint]:
    return [schemas.MetricPoint(name=name, step=s, value=1 / (s + 1)) for s in steps]


async def _record(uow_factory: UowFactory, run_id: int, points: list[schemas.MetricPoint]):
    async with uow_factory() as uow:
        return await services.record_metrics(
            uow, schemas.RecordMetrics(run_id=run_id, points=points)
        )


async def _count(uow_factory: UowFactory, model: type) -> int:
    async with uow_factory() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(model)) or 0)


async def test_experiment_names_are_unique_per_owner(sqlite_uow: UowFactory) -> None:
    await _experiment(sqlite_uow, "baseline")
    with pytest.raises(AlreadyExists, match="baseline"):
        await _experiment(sqlite_uow, "baseline")
    assert await _count(sqlite_uow, Experiment) == 1


async def test_experiments_list_with_their_run_counts(sqlite_uow: UowFactory) -> None:
    busy = await _experiment(sqlite_uow, "busy")
    idle = await _experiment(sqlite_uow, "idle")
    for _ in range(3):
        await _run(sqlite_uow, busy.id)
    async with sqlite_uow() as uow:
        listed = await services.list_experiments(uow, schemas.ListExperiments())
        running = await services.list_experiments(uow, schemas.ListExperiments(status="running"))
    assert [(e.id, e.status, e.run_count) for e in listed] == [
        (busy.id, "running", 3),
        (idle.id, "created", 0),
    ]
    assert [e.id for e in running] == [busy.id]


async def test_metric_batches_cross_the_statement_limit_idempotently(
    sqlite_uow: UowFactory,
) -> None:
    run = await _run(sqlite_uow, (await _experiment(sqlite_uow)).id)
    size = 7_000  # 35,000 parameters: past SQLite's 32,766 per statement
    first = await _record(sqlite_uow, run.id, _points(range(size)))
    overlapping = await _record(sqlite_uow, run.id, _points(range(size - 700, size + 800)))
    assert (first.received, first.inserted, first.duplicates) == (size, size, 0)
    assert (overlapping.received, overlapping.inserted, overlapping.duplicates) == (1500, 800, 700)
    async with sqlite_uow() as uow:
        assert await uow.metrics.count(run.id) == size + 800


async def test_the_same_step_under_another_name_is_a_new_point(sqlite_uow: UowFactory) -> None:
    run = await _run(sqlite_uow, (await _experiment(sqlite_uow)).id)
    await _record(sqlite_uow, run.id, _points(range(10), "loss"))
    accuracy = await _record(sqlite_uow, run.id, _points(range(10), "accuracy"))
    assert accuracy.inserted == 10


async def test_metrics_for_an_unknown_run_are_refused(sqlite_uow: UowFactory) -> None:
    with pytest.raises(RunNotFound):
        await _record(sqlite_uow, 999, _points(range(3)))
    assert await _count(sqlite_uow, Metric) == 0


async def test_finishing_a_run_settles_its_experiment(sqlite_uow: UowFactory) -> None:
    experiment = await _experiment(sqlite_uow)
    run = await _run(sqlite_uow, experiment.id)
    finish = schemas.FinishRun(run_id=run.id, status="completed")
    async with sqlite_uow() as uow:
        finished = await services.finish_run(uow, finish)
    async with sqlite_uow() as uow:
        again = await services.finish_run(uow, finish)
    with pytest.raises(InvalidTransition):
        async with sqlite_uow() as uow:
            await services.finish_run(uow, schemas.FinishRun(run_id=run.id, status="failed"))
    async with sqlite_uow() as uow:
        detail = await services.get_experiment(uow, experiment.id)
    assert (finished.changed, again.changed) == (True, False)
    assert detail.status == "completed"
    assert [(r.id, r.status) for r in detail.runs] == [(run.id, "completed")]
    assert detail.runs[0].ended_at is not None


async def test_stale_runs_are_failed_and_active_ones_kept(sqlite_uow: UowFactory) -> None:
    stale = await _run(sqlite_uow, (await _experiment(sqlite_uow, "stale")).id)
    await _run(sqlite_uow, (await _experiment(sqlite_uow, "active")).id)
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    async with sqlite_uow() as uow:
        await uow.session.execute(
            update(Run).where(Run.id == stale.id).values(last_activity_at=two_hours_ago)
        )
        await uow.commit()
    async with sqlite_uow() as uow:
        result = await services.fail_stale_runs(uow, schemas.FailStaleRuns(idle_seconds=3600))
    async with sqlite_uow() as uow:
        statuses = {
            e.name: (e.status, [r.status for r in (await services.get_experiment(uow, e.id)).runs])
            for e in await services.list_experiments(uow, schemas.ListExperiments())
        }
    assert result.run_ids == [stale.id]
    assert statuses == {"stale": ("failed", ["failed"]), "active": ("running", ["running"])}


async def test_deleting_a_profile_cascades_to_its_tracker_data(sqlite_uow: UowFactory) -> None:
    run = await _run(sqlite_uow, (await _experiment(sqlite_uow)).id)
    await _record(sqlite_uow, run.id, _points(range(50)))
    async with sqlite_uow() as uow:
        await uow.session.execute(delete(Profile))
        await uow.commit()
    counts = [await _count(sqlite_uow, model) for model in (Experiment, Run, Metric)]
    assert counts == [0, 0, 0]


async def test_timestamps_come_back_timezone_aware_in_utc(sqlite_uow: UowFactory) -> None:
    run = await _run(sqlite_uow, (await _experiment(sqlite_uow)).id)
    paris = timezone(timedelta(hours=2))
    sent = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=paris)
    point = schemas.MetricPoint(name="loss", step=0, value=1.0, recorded_at=sent)
    await _record(sqlite_uow, run.id, [point])
    async with sqlite_uow() as uow:
        plan = await services.start_generation(uow, schemas.GenerateProfiles(count=1, key="k"))
    async with sqlite_uow() as uow:
        await services.generate_chunk(
            uow, schemas.GenerateChunk(generation_id=plan.generation_id, chunk_index=0)
        )
    async with sqlite_uow() as uow:
        stored = await uow.session.scalar(select(Metric.recorded_at))
        started = await uow.session.scalar(select(Run.started_at))
        # Generated profiles take created_at from the CURRENT_TIMESTAMP server default.
        generated = await uow.session.scalar(select(func.max(Profile.created_at)))
    assert stored == sent
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)
    for value in (started, generated):
        assert value is not None
        assert value.tzinfo is not None
        assert abs(datetime.now(UTC) - value) < timedelta(minutes=5)
