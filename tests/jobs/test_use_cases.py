"""Every job does its work through the worker and returns a small JSON summary."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from domain.models import Experiment, Metric, Profile, Run
from tests.support.rows import run_statuses, seed_runs


async def run_one(harness, function: str, payload: dict) -> dict:
    job = await harness.enqueue(function, payload)
    await harness.run()
    info = await harness.result(job.job_id)
    assert info.success, info.result
    return info.result


async def test_a_profile_experiment_and_run_from_start_to_finish(harness):
    profile = await run_one(
        harness, "create_profile", {"username": "ada", "email": "ada@x.org", "full_name": "Ada"}
    )
    updated = await run_one(
        harness, "update_profile", {"profile_id": profile["id"], "changes": {"bio": "hi"}}
    )
    experiment = await run_one(
        harness, "create_experiment", {"owner_id": profile["id"], "name": "baseline"}
    )
    run = await run_one(harness, "start_run", {"experiment_id": experiment["id"], "seed": 3})
    one = await run_one(
        harness, "record_metric", {"run_id": run["id"], "name": "loss", "step": 0, "value": 1.5}
    )
    points = [{"name": "loss", "step": step, "value": 1 / step} for step in range(1, 101)]
    batch = await run_one(harness, "record_metrics", {"run_id": run["id"], "points": points})
    finished = await run_one(harness, "finish_run", {"run_id": run["id"], "status": "completed"})

    assert (updated["version"], updated["bio"]) == (2, "hi")
    assert (experiment["owner_id"], experiment["state"]) == (profile["id"], "created")
    assert (run["state"], run["seed"]) == ("running", 3)
    assert (one["inserted"], batch["inserted"], batch["duplicates"]) == (1, 100, 0)
    assert (finished["changed"], finished["run"]["state"]) == (True, "completed")
    async with harness.session_factory() as session:
        assert (await session.get(Profile, profile["id"])).bio == "hi"
        assert (await session.get(Experiment, experiment["id"])).status == "completed"
        assert (await session.get(Run, run["id"])).status == "completed"
        steps = (await session.scalars(select(Metric.step).order_by(Metric.step))).all()
    assert steps == list(range(101))
    records = await harness.job_records()
    assert len(records) == 7
    assert {r.status for r in records} == {"succeeded"}


async def test_the_maintenance_jobs_run_by_name_with_a_payload(harness):
    stale, fresh = await seed_runs(harness.session_factory, [timedelta(hours=2), timedelta(0)])

    swept = await run_one(harness, "fail_stale_runs", {"idle_seconds": 3600})
    pruned = await run_one(harness, "prune_job_history", {"keep_days": 1})

    assert swept == {"run_ids": [stale]}
    assert await run_statuses(harness.session_factory, [stale, fresh]) == ["failed", "running"]
    assert pruned["deleted"] == 0  # the one success on record is seconds old
