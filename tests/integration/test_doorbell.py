"""The doorbell on real Redis: an idle worker blocks instead of polling, wakes when a
producer rings, and still runs deferred jobs and retries on time (``worker.runtime.polling``)."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import Retry
from arq.connections import ArqRedis
from arq.cron import cron
from arq.utils import ms_to_datetime, timestamp_ms

from worker.lanes import doorbell_key
from worker.ops.enqueue import enqueue_many
from worker.runtime.claim_script import Claim
from worker.runtime.claiming import ClaimingWorker
from worker.settings import Settings
from worker.testing.inprocess import running

QUEUE = "test:doorbell"
DEFER_S = 1.5


class Counting(ClaimingWorker):
    """Counts its claims: one per poll."""

    claims = 0

    async def claim_ready(self, *, urgent_only: bool = False) -> Claim | None:
        self.claims += not urgent_only  # a busy worker's claim between polls is not one
        return await super().claim_ready(urgent_only=urgent_only)


async def tick(ctx: dict[str, Any], payload: Any = None) -> str:
    return "ticked"


async def flaky(ctx: dict[str, Any], payload: Any = None) -> str:
    if ctx["job_try"] == 1:
        raise Retry(defer=DEFER_S)
    return "second try"


def worker_on(redis: ArqRedis, idle_wait: float) -> Counting:
    return Counting(
        [tick, flaky],
        queue_name=QUEUE,
        redis_pool=redis,
        handle_signals=False,
        poll_delay=0.01,
        ctx={
            "settings": Settings(
                lease_seconds=8, idle_wait_seconds=idle_wait, redis_socket_timeout=2 * idle_wait
            )
        },
    )


async def result_of(redis: ArqRedis, job_id: str, within: float) -> Any:
    from arq.jobs import Job

    return await Job(job_id, redis, _queue_name=QUEUE).result(timeout=within, poll_delay=0.05)


async def test_an_idle_worker_wakes_when_a_producer_rings(redis):
    worker = worker_on(redis, idle_wait=30)  # it would sleep 30 s unless rung
    async with running(worker):
        await asyncio.sleep(0.5)
        idle_claims = worker.claims
        [job_id] = await enqueue_many(redis, "tick", [{}], queue_name=QUEUE)

        assert await result_of(redis, job_id, within=10) == "ticked"
    assert idle_claims <= 2  # polling every 10 ms would have claimed ~50 times


async def test_a_deferred_job_runs_when_due_without_polling_meanwhile(redis):
    [job_id] = await enqueue_many(redis, "tick", [{}], queue_name=QUEUE)
    await redis.zadd(QUEUE, {job_id: timestamp_ms() + int(DEFER_S * 1000)})  # as arq defers
    worker = worker_on(redis, idle_wait=30)
    async with running(worker):
        assert await result_of(redis, job_id, within=DEFER_S + 10) == "ticked"
        claims = worker.claims
    assert claims <= 5  # woken by the job's own due time, not by a poll every 10 ms


async def test_a_retry_runs_when_its_back_off_ends(redis):
    worker = worker_on(redis, idle_wait=30)
    async with running(worker):
        [job_id] = await enqueue_many(redis, "flaky", [{}], queue_name=QUEUE)

        assert await result_of(redis, job_id, within=DEFER_S + 10) == "second try"
        claims = worker.claims
    assert claims <= 10


async def test_the_idle_wait_ends_when_the_next_deferred_job_or_cron_tick_is_due(redis):
    worker = worker_on(redis, idle_wait=30)
    worker.idle_wait = 30  # as main() reads it from the settings
    now = timestamp_ms()
    assert worker.idle_wait_seconds(None, now) == 30  # nothing due: a producer rings
    assert worker.idle_wait_seconds(now + 1_500, now) == 1.5

    every_minute = cron(tick, name="cron:tick", second=0)
    every_minute.next_run = ms_to_datetime(now + 4_000)
    worker.cron_jobs = [every_minute]
    assert worker.idle_wait_seconds(None, now) == 4
    assert worker.idle_wait_seconds(now + 1_500, now) == 1.5


async def test_a_try_deferred_for_later_rings_the_doorbell(redis):
    """Another idle worker then learns when it is due, however long its idle wait."""
    worker = worker_on(redis, idle_wait=30)
    bell = doorbell_key(QUEUE)
    # arq's end of a try: (job, finish, result, result ttl, keep forever, score increment,
    # keep in progress)
    await worker.finish_job("ended", True, b"result", 60, False, None, None)
    assert await redis.llen(bell) == 0

    await worker.finish_job("deferred", False, None, None, False, 1_500, None)
    assert await redis.llen(bell) == 1
