"""Delivery in the real worker process: retry versus permanent failure, duplicates, cron.

Four scenarios on one worker process, one after the other (a worker start each cost
more than the scenario): the unknown run first, while its record is the history's only
one; none of them touches another's runs, jobs or points."""

from __future__ import annotations

from datetime import timedelta

import pytest
from arq.constants import in_progress_key_prefix, result_key_prefix
from arq.utils import timestamp_ms
from sqlalchemy import select, text

from domain.models import Experiment, JobRecord, Metric, Run
from tests.support.db import count_rows
from tests.support.queue import arq_client
from tests.support.rows import (
    eventually,
    job_record,
    run_statuses,
    seed_runs,
)
from worker.serialization import JobError

pytestmark = pytest.mark.e2e

RESULT_WAIT = 20
WAITING_ON_EXPERIMENT = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND query LIKE 'UPDATE experiments%'"
)


async def test_delivery_in_the_worker_process(env, worker, session_factory):
    await an_unknown_run_fails_once_with_its_error_type(env, session_factory)
    await a_deadlock_victim_is_retried_and_succeeds(env, worker, session_factory)
    await a_duplicate_enqueue_is_refused_and_applies_once(env, session_factory)
    await a_late_second_delivery_of_a_cron_tick_changes_nothing(env, session_factory)


async def worker_waits_on_experiment_lock(session_factory) -> bool:
    async with session_factory() as session:
        return bool(await session.scalar(WAITING_ON_EXPERIMENT))


async def a_deadlock_victim_is_retried_and_succeeds(env, worker, session_factory):
    [run_id] = await seed_runs(session_factory, [timedelta(0)])
    async with session_factory() as blocker, arq_client(env["REDIS_URL"]) as pool:
        # Never let this session be the one PostgreSQL picks as the victim.
        await blocker.execute(text("SET LOCAL deadlock_timeout = '10s'"))
        run = await blocker.get(Run, run_id)
        await blocker.execute(
            select(Experiment.id).where(Experiment.id == run.experiment_id).with_for_update()
        )
        job = await pool.enqueue_job("finish_run", {"run_id": run_id, "status": "completed"})
        # finish_run locks the run, then waits for the experiment this session holds...
        await eventually(
            lambda: worker_waits_on_experiment_lock(session_factory), what="worker blocked"
        )
        # ...and this session now waits for the run: a cycle the worker's backend breaks.
        await blocker.execute(select(Run.id).where(Run.id == run_id).with_for_update())
        await blocker.rollback()
        result = await job.result(timeout=RESULT_WAIT, poll_delay=0.02)
        info = await job.result_info()

    assert result["changed"] is True
    assert info.job_try == 2
    assert await run_statuses(session_factory, [run_id]) == ["completed"]
    record = await job_record(session_factory, job.job_id)
    assert (record.status, record.tries) == ("succeeded", 2)
    assert f"job {job.job_id} try 1 hit a transient" in worker.log


async def an_unknown_run_fails_once_with_its_error_type(env, session_factory):
    async with arq_client(env["REDIS_URL"]) as pool:
        job = await pool.enqueue_job("finish_run", {"run_id": 424242, "status": "completed"})
        with pytest.raises(JobError) as failure:
            await job.result(timeout=RESULT_WAIT, poll_delay=0.02)
        info = await job.result_info()

    assert failure.value.type_name == "RunNotFound"
    assert failure.value.message == "run 424242 not found"
    assert info.job_try == 1
    async with session_factory() as session:
        records = (await session.scalars(select(JobRecord))).all()
    assert [(r.job_id, r.status, r.tries, r.error_type) for r in records] == [
        (job.job_id, "failed", 1, "RunNotFound")
    ]


async def a_duplicate_enqueue_is_refused_and_applies_once(env, session_factory):
    [run_id] = await seed_runs(session_factory, [timedelta(0)])
    point = {"run_id": run_id, "name": "loss", "step": 1, "value": 0.5}
    async with arq_client(env["REDIS_URL"]) as pool:
        first = await pool.enqueue_job("record_metric", point, _job_id="metric-1")
        assert await pool.enqueue_job("record_metric", point, _job_id="metric-1") is None
        assert (await first.result(timeout=RESULT_WAIT, poll_delay=0.02))["inserted"] == 1
        assert await pool.enqueue_job("record_metric", point, _job_id="metric-1") is None
        # Past arq's guard (its result expired), the database still applies it once.
        await pool.delete(result_key_prefix + "metric-1")
        again = await pool.enqueue_job("record_metric", point, _job_id="metric-1")
        second = await again.result(timeout=RESULT_WAIT, poll_delay=0.02)

    assert second == {"duplicate": True, "job_id": "metric-1"}
    assert await count_rows(session_factory, Metric) == 1
    record = await job_record(session_factory, "metric-1")
    assert (record.status, record.duplicates) == ("succeeded", 1)


async def a_late_second_delivery_of_a_cron_tick_changes_nothing(env, session_factory):
    [stale] = await seed_runs(session_factory, [timedelta(hours=3)])
    tick = f"cron:fail_stale_runs:{timestamp_ms()}"

    async def tick_record():
        return await job_record(session_factory, tick)

    async with arq_client(env["REDIS_URL"]) as pool:
        assert await pool.enqueue_job("cron:fail_stale_runs", _job_id=tick) is not None
        await eventually(tick_record, what="first delivery")
        [late] = await seed_runs(session_factory, [timedelta(hours=3)])
        # A second worker's scheduler, its clock a minute late: arq's own marks have lapsed.
        await pool.delete(result_key_prefix + tick, in_progress_key_prefix + tick)
        assert await pool.enqueue_job("cron:fail_stale_runs", _job_id=tick) is not None

        async def counted_duplicate():
            record = await tick_record()
            return record if record is not None and record.duplicates else None

        record = await eventually(counted_duplicate, what="second delivery")

    assert (record.status, record.duplicates) == ("succeeded", 1)
    assert await run_statuses(session_factory, [stale, late]) == ["failed", "running"]
