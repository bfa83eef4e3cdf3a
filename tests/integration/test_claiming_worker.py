"""``ClaimingWorker.claim_ready`` on real Redis: arq's claim rules, in one script call."""

from __future__ import annotations

import asyncio
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms

from worker.bootstrap import this_worker_id
from worker.ops.queue_state import read_lease
from worker.runtime.claiming import ClaimingWorker
from worker.runtime.leases import ARQ_CLAIM
from worker.settings import Settings

QUEUE = "test:claims"
LEASE_S = 8


class Recording(ClaimingWorker):
    """Starts nothing: notes which jobs it would have run, with their scores."""

    started: list[tuple[str, int]]

    async def run_job(self, job_id: str, score: int) -> None:
        self.started.append((job_id, score))


async def noop(ctx: dict[str, Any]) -> None:
    return None


def worker_on(redis: ArqRedis, max_jobs: int) -> Recording:
    worker = Recording(
        [noop],
        queue_name=QUEUE,
        redis_pool=redis,
        handle_signals=False,
        max_jobs=max_jobs,
        ctx={"settings": Settings(lease_seconds=LEASE_S)},
    )
    worker.started = []
    return worker


async def start(worker: Recording) -> list[str]:
    await worker.claim_ready()
    await asyncio.gather(*worker.tasks.values())
    return [job_id for job_id, _ in worker.started]


async def test_due_unclaimed_jobs_are_claimed_as_leases_in_queue_order(redis):
    now = timestamp_ms()
    await redis.zadd(QUEUE, {"a": now - 2_000, "b": now - 1_000})
    worker = worker_on(redis, max_jobs=10)

    assert await start(worker) == ["a", "b"]
    assert worker.started == [("a", now - 2_000), ("b", now - 1_000)]
    for job_id in ("a", "b"):
        lease = read_lease(await redis.get(in_progress_key_prefix + job_id))
        assert lease is not None
        assert lease[1] == this_worker_id()  # the console shows who runs it
        assert 0 < await redis.pttl(in_progress_key_prefix + job_id) <= LEASE_S * 1000


async def test_running_finished_and_future_jobs_are_left_alone(redis):
    now = timestamp_ms()
    await redis.zadd(QUEUE, {"running": now - 1_000, "later": now + 60_000, "free": now - 500})
    await redis.psetex(in_progress_key_prefix + "running", 310_000, ARQ_CLAIM)
    worker = worker_on(redis, max_jobs=10)

    assert await start(worker) == ["free"]
    assert await redis.get(in_progress_key_prefix + "running") == ARQ_CLAIM.encode()
    assert await redis.exists(in_progress_key_prefix + "later") == 0


async def test_no_more_jobs_are_claimed_than_the_worker_has_room_for(redis):
    now = timestamp_ms()
    await redis.zadd(QUEUE, {f"job-{n}": now - 1_000 + n for n in range(5)})
    worker = worker_on(redis, max_jobs=3)
    worker.job_counter = 1  # one job already running here

    assert await start(worker) == ["job-0", "job-1"]
    assert await redis.exists(in_progress_key_prefix + "job-2") == 0
