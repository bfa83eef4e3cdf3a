"""Experiment, run and metric use cases on fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain import schemas, services
from domain.errors import (
    AlreadyExists,
    ExperimentNotFound,
    InvalidTransition,
    ProfileNotFound,
    RunNotFound,
)
from tests.support.fake_steps import Tracker
from tests.support.fakes import FakeStore

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _points(*steps: int, name: str = "loss") -> list[dict[str, object]]:
    return [{"name": name, "step": step, "value": step / 10} for step in steps]


async def _record(tracker: Tracker, run_id: int, points: list[dict[str, object]]):
    payload = schemas.RecordMetrics.model_validate({"run_id": run_id, "points": points})
    async with tracker.uow() as uow:
        return await services.record_metrics(uow, payload)


async def _finish(tracker: Tracker, run_id: int, status: str):
    payload = schemas.FinishRun.model_validate({"run_id": run_id, "status": status})
    async with tracker.uow() as uow:
        return await services.finish_run(uow, payload)


async def _fail_stale(tracker: Tracker, idle_seconds: int) -> list[int]:
    payload = schemas.FailStaleRuns(idle_seconds=idle_seconds)
    async with tracker.uow() as uow:
        result = await services.fail_stale_runs(uow, payload, now=NOW)
    assert uow.commits == 1
    return result.run_ids


async def test_create_experiment_for_unknown_owner_is_profile_not_found(tracker: Tracker):
    with pytest.raises(ProfileNotFound):
        await tracker.experiment(owner_id=5)


async def test_experiment_names_are_unique_per_owner(tracker: Tracker):
    ada, grace = await tracker.profile("ada"), await tracker.profile("grace")
    await tracker.experiment(ada.id, "mnist")
    await tracker.experiment(grace.id, "mnist")
    with pytest.raises(AlreadyExists):
        await tracker.experiment(ada.id, "mnist")


async def test_start_run_sets_the_experiment_running(tracker: Tracker):
    owner = await tracker.profile()
    experiment = await tracker.experiment(owner.id)
    run = await tracker.run(experiment.id)
    assert (run.state, run.ended_at, run.experiment_id) == ("running", None, experiment.id)
    assert tracker.experiment_status(experiment.id) == "running"


async def test_start_run_of_unknown_experiment_is_not_found(tracker: Tracker):
    with pytest.raises(ExperimentNotFound):
        await tracker.run(3)


async def test_list_and_get_experiments_report_runs(tracker: Tracker):
    owner = await tracker.profile()
    busy, idle = await tracker.experiment(owner.id, "busy"), await tracker.experiment(owner.id)
    await tracker.run(busy.id)
    await tracker.run(busy.id)
    async with tracker.uow() as uow:
        listed = await services.list_experiments(uow, schemas.ListExperiments(owner_id=owner.id))
        running = await services.list_experiments(uow, schemas.ListExperiments(state="running"))
        detail = await services.get_experiment(uow, busy.id)
    assert [(e.id, e.run_count) for e in listed] == [(busy.id, 2), (idle.id, 0)]
    assert [e.id for e in running] == [busy.id]
    assert [r.experiment_id for r in detail.runs] == [busy.id, busy.id]


async def test_finish_run_completes_it_and_settles_the_experiment(tracker: Tracker):
    owner = await tracker.profile()
    experiment = await tracker.experiment(owner.id)
    run = await tracker.run(experiment.id)
    async with tracker.uow() as uow:
        finished = await services.finish_run(
            uow, schemas.FinishRun(run_id=run.id, status="completed")
        )
    assert uow.commits == 1
    assert finished.changed
    assert finished.run.state == "completed"
    assert finished.run.ended_at is not None
    assert tracker.experiment_status(experiment.id) == "completed"


async def test_finishing_twice_with_the_same_status_changes_nothing(tracker: Tracker):
    owner = await tracker.profile()
    run = await tracker.run((await tracker.experiment(owner.id)).id)
    first = await _finish(tracker, run.id, "failed")
    again = await _finish(tracker, run.id, "failed")
    assert (first.changed, again.changed) == (True, False)
    assert again.run == first.run


async def test_finishing_with_another_status_is_an_invalid_transition(tracker: Tracker):
    owner = await tracker.profile()
    run = await tracker.run((await tracker.experiment(owner.id)).id)
    await _finish(tracker, run.id, "completed")
    with pytest.raises(InvalidTransition, match="already ended as 'completed'"):
        await _finish(tracker, run.id, "failed")
    assert tracker.store.rows["runs"][run.id]["status"] == "completed"


async def test_finishing_unknown_run_is_run_not_found(tracker: Tracker):
    with pytest.raises(RunNotFound):
        await _finish(tracker, 11, "completed")


async def test_experiment_stays_running_until_its_last_run_ends(tracker: Tracker):
    owner = await tracker.profile()
    experiment = await tracker.experiment(owner.id)
    first, second = await tracker.run(experiment.id), await tracker.run(experiment.id)
    await _finish(tracker, first.id, "completed")
    assert tracker.experiment_status(experiment.id) == "running"
    await _finish(tracker, second.id, "failed")
    assert tracker.experiment_status(experiment.id) == "failed"


async def test_record_metrics_counts_new_points_and_duplicates(tracker: Tracker):
    owner = await tracker.profile()
    run = await tracker.run((await tracker.experiment(owner.id)).id)
    first = await _record(tracker, run.id, _points(0, 1, 2))
    second = await _record(tracker, run.id, _points(1, 2, 3, 4) + _points(1, name="acc"))
    assert (first.received, first.inserted, first.duplicates) == (3, 3, 0)
    assert (second.received, second.inserted, second.duplicates) == (5, 3, 2)
    assert len(tracker.store.rows["metrics"]) == 6


async def test_a_point_repeated_within_one_batch_is_stored_once(tracker: Tracker):
    owner = await tracker.profile()
    run = await tracker.run((await tracker.experiment(owner.id)).id)
    recorded = await _record(tracker, run.id, _points(7, 7))
    assert (recorded.inserted, recorded.duplicates) == (1, 1)


async def test_record_metrics_for_unknown_run_is_run_not_found(tracker: Tracker, store: FakeStore):
    with pytest.raises(RunNotFound, match="run 9 not found"):
        await _record(tracker, 9, _points(0))
    assert store.rows["metrics"] == {}
    assert store.commits == 0


async def test_record_metric_is_a_batch_of_one(tracker: Tracker):
    owner = await tracker.profile()
    run = await tracker.run((await tracker.experiment(owner.id)).id)
    payload = schemas.RecordMetric(run_id=run.id, name="loss", step=0, value=0.5)
    async with tracker.uow() as uow:
        recorded = await services.record_metric(uow, payload)
    assert (recorded.received, recorded.inserted) == (1, 1)
    assert tracker.store.rows["metrics"][run.id, "loss", 0]["value"] == 0.5


async def test_fail_stale_runs_fails_only_runs_idle_longer_than_the_window(tracker: Tracker):
    owner = await tracker.profile()
    experiment = await tracker.experiment(owner.id)
    stale, borderline, fresh = [await tracker.run(experiment.id) for _ in range(3)]
    tracker.set_last_activity(stale.id, NOW - timedelta(seconds=61))
    tracker.set_last_activity(borderline.id, NOW - timedelta(seconds=60))
    tracker.set_last_activity(fresh.id, NOW - timedelta(seconds=5))
    assert await _fail_stale(tracker, idle_seconds=60) == [stale.id]
    row = tracker.store.rows["runs"][stale.id]
    assert (row["status"], row["ended_at"]) == ("failed", NOW)
    assert "no metric for more than 0:01:00" in row["failure_reason"]
    assert tracker.experiment_status(experiment.id) == "running"


async def test_fail_stale_runs_settles_an_experiment_left_without_live_runs(tracker: Tracker):
    owner = await tracker.profile()
    experiment = await tracker.experiment(owner.id)
    done, stale = await tracker.run(experiment.id), await tracker.run(experiment.id)
    await _finish(tracker, done.id, "completed")
    tracker.set_last_activity(stale.id, NOW - timedelta(hours=1))
    tracker.set_last_activity(done.id, NOW - timedelta(hours=1))
    assert await _fail_stale(tracker, idle_seconds=60) == [stale.id]
    assert tracker.experiment_status(experiment.id) == "failed"
    assert tracker.store.rows["runs"][done.id]["status"] == "completed"


async def test_recording_metrics_keeps_a_run_from_going_stale(tracker: Tracker):
    owner = await tracker.profile()
    run = await tracker.run((await tracker.experiment(owner.id)).id)
    tracker.set_last_activity(run.id, datetime.now(UTC) - timedelta(hours=1))
    await _record(tracker, run.id, _points(0))
    payload = schemas.FailStaleRuns(idle_seconds=600)
    async with tracker.uow() as uow:
        result = await services.fail_stale_runs(uow, payload)
    assert result.run_ids == []


async def test_prune_job_history_keeps_recent_jobs_and_unhandled_failures(
    tracker: Tracker, store: FakeStore
):
    old = NOW - timedelta(days=10)
    store.rows["jobs"] = {
        "old-ok": {"status": "succeeded", "finished_at": old},
        "old-failed": {"status": "failed", "finished_at": old},
        "old-handled": {"status": "failed", "finished_at": old, "handled_at": old},
        "new-ok": {"status": "succeeded", "finished_at": NOW},
    }
    async with tracker.uow() as uow:
        pruned = await services.prune_job_history(
            uow, schemas.PruneJobHistory(keep_days=7), now=NOW
        )
    assert (pruned.deleted, pruned.kept) == (2, 1)
    assert set(store.rows["jobs"]) == {"old-failed", "new-ok"}
