"""A raw arq client -> Redis -> a worker process -> PostgreSQL, for every job and cron job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from sqlalchemy import select

from domain.db import utcnow
from domain.models import Experiment, GenerationChunk, Metric, Profile, Run
from tests.support.db import count_rows
from tests.support.queue import arq_client
from tests.support.rows import (
    eventually,
    job_record,
    run_statuses,
    seed_job_record,
    seed_runs,
)
from worker.lanes import lane_queue
from worker.registry import GENERATE_CHUNK, chunk_job_id
from worker.serialization import deserialize, serialize
from worker.settings import Settings

pytestmark = pytest.mark.e2e

RESULT_WAIT = 20


async def run_job(pool, function: str, payload: dict | None = None, **options) -> dict:
    args = () if payload is None else (payload,)
    job = await pool.enqueue_job(function, *args, **options)
    assert job is not None, f"{function} was not enqueued"
    return await job.result(timeout=RESULT_WAIT, poll_delay=0.02)


async def chunk_result(pool, job_id: str) -> dict:
    # A plain arq client follows a job in the sorted set of its lane (worker.lanes).
    queue = lane_queue(pool.default_queue_name, GENERATE_CHUNK.lane)
    job = Job(job_id, pool, _queue_name=queue, _deserializer=deserialize)
    return await job.result(timeout=RESULT_WAIT, poll_delay=0.02)


async def test_every_use_case_job_through_the_worker_process(env, worker, session_factory):
    # The first through arq's own pool with the JSON serializer, as any arq producer may
    # (README); it rings no doorbell, and is picked up all the same.
    plain = await create_pool(
        RedisSettings.from_dsn(env["REDIS_URL"]),
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=Settings().queue_name,
    )
    try:
        profile = await run_job(
            plain, "create_profile", {"username": "ada", "email": "ada@x.org", "full_name": "Ada"}
        )
    finally:
        await plain.aclose()
    assert profile["username"] == "ada"
    async with arq_client(env["REDIS_URL"]) as pool:
        updated = await run_job(
            pool, "update_profile", {"profile_id": profile["id"], "changes": {"bio": "hi"}}
        )
        experiment = await run_job(
            pool, "create_experiment", {"owner_id": profile["id"], "name": "baseline"}
        )
        run = await run_job(pool, "start_run", {"experiment_id": experiment["id"]})
        one = await run_job(
            pool, "record_metric", {"run_id": run["id"], "name": "acc", "step": 0, "value": 0.5}
        )
        points = [{"name": "loss", "step": step, "value": 2.0 / (step + 1)} for step in range(500)]
        batch = await run_job(pool, "record_metrics", {"run_id": run["id"], "points": points})
        finished = await run_job(pool, "finish_run", {"run_id": run["id"], "status": "failed"})

    assert (updated["version"], one["inserted"], batch["inserted"]) == (2, 1, 500)
    assert finished["changed"] is True
    async with session_factory() as session:
        assert (await session.get(Profile, profile["id"])).bio == "hi"
        assert (await session.get(Experiment, experiment["id"])).status == "failed"
        assert (await session.get(Run, run["id"])).status == "failed"
        names = (await session.scalars(select(Metric.name).where(Metric.run_id == run["id"]))).all()
    assert sorted(set(names)) == ["acc", "loss"]
    assert len(names) == 501
    assert await count_rows(session_factory, Profile) == 1


async def test_generate_profiles_fans_out_to_exactly_the_count(env, worker, session_factory):
    async with arq_client(env["REDIS_URL"]) as pool:
        plan = await run_job(
            pool, "generate_profiles", {"count": 1050, "seed": 7, "chunk_size": 200}
        )
        chunks = [
            await chunk_result(pool, chunk_job_id(plan["generation_id"], i, plan["key"]))
            for i in range(plan["chunks"])
        ]

    assert (plan["total"], plan["chunks"]) == (1050, 6)
    assert [chunk["inserted"] for chunk in chunks] == [200] * 5 + [50]
    assert await count_rows(session_factory, Profile) == 1050
    assert await count_rows(session_factory, GenerationChunk) == 6


async def test_the_maintenance_jobs_by_name_and_their_cron_wrappers(env, worker, session_factory):
    stale, fresh = await seed_runs(session_factory, [timedelta(hours=3), timedelta(0)])
    old = utcnow() - timedelta(days=60)
    await seed_job_record(session_factory, "old-a", status="succeeded", finished_at=old)
    await seed_job_record(session_factory, "old-b", status="succeeded", finished_at=old)

    async with arq_client(env["REDIS_URL"]) as pool:
        swept = await run_job(pool, "fail_stale_runs", {"idle_seconds": 3600})
        pruned = await run_job(pool, "prune_job_history", {"keep_days": 30})
        # The cron wrappers, as a worker's scheduler enqueues them (arq keeps no cron result).
        [late] = await seed_runs(session_factory, [timedelta(hours=3)])
        await seed_job_record(session_factory, "old-c", status="succeeded", finished_at=old)
        for name in ("fail_stale_runs", "prune_job_history"):
            assert await pool.enqueue_job(f"cron:{name}", _job_id=f"cron:{name}:1") is not None

    assert swept == {"run_ids": [stale]}
    assert pruned["deleted"] == 2
    for name in ("fail_stale_runs", "prune_job_history"):
        record = await eventually(
            lambda name=name: job_record(session_factory, f"cron:{name}:1"), what=name
        )
        assert (record.function, record.status) == (name, "succeeded")
    assert await run_statuses(session_factory, [stale, fresh, late]) == [
        "failed",
        "running",
        "failed",
    ]
    assert await job_record(session_factory, "old-c") is None
