"""The sweep closes what a dead process left retrying in the history, on PostgreSQL and
Redis: only jobs no queue holds, once, however many workers sweep at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from arq.constants import in_progress_key_prefix, result_key_prefix

from domain.db import utcnow
from domain.repositories import JobStamp
from worker.bootstrap import Services
from worker.runtime.prometheus import HISTORY_SWEPT
from worker.runtime.sweep import ARQ_FAILED, LOST, LOST_ERROR, LostJobSweeper, sweep_lost_jobs
from worker.serialization import serialize
from worker.settings import Settings


@pytest.fixture
async def services(pg_database, emptied_pg_engine, clean_redis, redis) -> AsyncIterator[Services]:
    settings = Settings(database_url=pg_database, redis_url=clean_redis.url)
    built = Services.for_worker(settings, redis)
    yield built
    await built.close()


async def _retrying(services: Services, *job_ids: str) -> None:
    async with services.unit_of_work() as uow:
        for job_id in job_ids:
            stamp = JobStamp(job_id, "create_profile", 2, utcnow(), worker="w:gone")
            await uow.jobs.record_retry(
                stamp,
                error_type="ConnectionResetError",
                message="e",
                payload=None,
                retry_at=utcnow(),
            )
        await uow.commit()


async def _states(services: Services) -> dict[str, tuple[str, str | None]]:
    async with services.unit_of_work() as uow:
        records = await uow.jobs.list_recent(status=None, function=None, limit=100)
        return {r.job_id: (r.state, r.error_type) for r in records}


async def test_the_sweep_closes_only_jobs_no_queue_holds_and_says_what_it_closed(
    services, redis, caplog
):
    queue = services.settings.queue_name
    await _retrying(services, "queued", "running", "lost", "failed-by-arq", "done")
    await redis.zadd(queue, {"queued": 1})
    await redis.set(in_progress_key_prefix + "running", b"lease")
    failed = {"t": 9, "f": "create_profile", "a": [], "k": {}, "et": 1, "s": False,
              "r": TimeoutError("arq's own timeout"), "st": 1, "ft": 2, "q": queue}  # fmt: skip
    await redis.set(result_key_prefix + "failed-by-arq", serialize(failed))
    await redis.set(result_key_prefix + "done", serialize({**failed, "s": True, "r": {"ok": 1}}))
    lost_before = HISTORY_SWEPT.labels(LOST)._value.get()

    swept = await sweep_lost_jobs(services, idle_seconds=0)

    assert (swept.looked_at, swept.closed) == (5, {LOST: ["lost"], ARQ_FAILED: ["failed-by-arq"]})
    assert await _states(services) == {
        "queued": ("retrying", "ConnectionResetError"),
        "running": ("retrying", "ConnectionResetError"),
        "lost": ("failed", LOST_ERROR),
        "failed-by-arq": ("failed", "TimeoutError"),
        "done": ("retrying", "ConnectionResetError"),
    }
    assert HISTORY_SWEPT.labels(LOST)._value.get() == lost_before + 1
    assert "the sweep closed 2 job(s) left retrying" in caplog.text
    assert (await sweep_lost_jobs(services, idle_seconds=0)).count == 0  # idempotent


async def test_a_job_retrying_for_less_than_the_idle_time_is_left_alone(services):
    await _retrying(services, "just-failed")
    assert (await sweep_lost_jobs(services, idle_seconds=60)).looked_at == 0
    assert await _states(services) == {"just-failed": ("retrying", "ConnectionResetError")}


async def test_many_workers_sweeping_at_once_close_each_job_once(services):
    job_ids = [f"lost:{n}" for n in range(40)]
    await _retrying(services, *job_ids)

    sweeps = await asyncio.gather(*(sweep_lost_jobs(services, idle_seconds=0) for _ in range(4)))

    closed = [job_id for swept in sweeps for job_id in swept.closed[LOST]]
    assert sorted(closed) == sorted(job_ids)
    assert set((await _states(services)).values()) == {("failed", LOST_ERROR)}


async def test_one_worker_sweeps_per_period(services):
    sweepers = [LostJobSweeper(services) for _ in range(3)]
    turns = [await sweeper.sweep_in_turn() for sweeper in sweepers]
    assert [turn is not None for turn in turns] == [True, False, False]
