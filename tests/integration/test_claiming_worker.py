"""``ClaimingWorker.claim_ready`` on real Redis: arq's claim rules, in one script call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms

from worker.bootstrap import this_worker_id
from worker.ops.queue_state import read_lease
from worker.runtime.claim_script import Claimer
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


def options(redis: ArqRedis, max_jobs: int = 10) -> dict[str, Any]:
    """A worker's options on the test's queue; it takes abort requests."""
    settings = {"settings": Settings(lease_seconds=LEASE_S)}
    base = {"queue_name": QUEUE, "redis_pool": redis, "handle_signals": False, "ctx": settings}
    return base | {"max_jobs": max_jobs, "allow_abort_jobs": True}


def worker_on(redis: ArqRedis, max_jobs: int) -> Recording:
    worker = Recording([noop], **options(redis, max_jobs))
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


async def echo(ctx: dict[str, Any], value: int) -> dict[str, int]:
    return {"value": value, "try": ctx["job_try"]}


def running_worker(redis: ArqRedis) -> ClaimingWorker:
    """A worker that runs what it claims, through arq's run_job."""
    return ClaimingWorker([echo], **options(redis))


async def run_claimed(worker: ClaimingWorker) -> None:
    await worker.claim_ready()
    await asyncio.gather(*worker.tasks.values())


def count_transactions(redis: ArqRedis, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each pipeline the pool opens from now on, True for a transaction."""
    opened: list[bool] = []
    pipeline = redis.pipeline

    def counted(transaction: bool = True) -> Any:
        opened.append(transaction)
        return pipeline(transaction=transaction)

    monkeypatch.setattr(redis, "pipeline", counted)
    return opened


async def test_a_claimed_job_is_read_and_its_try_counted_by_its_claim(redis, monkeypatch):
    job = await redis.enqueue_job("echo", 7, _queue_name=QUEUE)
    assert job is not None
    await redis.set(retry_key_prefix + job.job_id, 2)  # two tries were counted before
    opened = count_transactions(redis, monkeypatch)

    await run_claimed(running_worker(redis))

    assert opened == [True]  # arq's finish alone: its first read went with the claim
    assert await job.result(timeout=1) == {"value": 7, "try": 3}


async def test_an_abort_requested_before_a_claimed_job_starts_fails_it_unrun(redis):
    job = await redis.enqueue_job("echo", 7, _queue_name=QUEUE)
    assert job is not None
    await redis.zadd(abort_jobs_ss, {job.job_id: timestamp_ms()})
    await start(worker_on(redis, max_jobs=1))  # claimed, and its worker stops there

    assert await redis.zscore(abort_jobs_ss, job.job_id) is not None  # it outlives the claim
    await redis.delete(in_progress_key_prefix + job.job_id)  # the lease lapsed
    await run_claimed(running_worker(redis))

    info = await job.result_info()
    assert info is not None
    assert not info.success
    assert isinstance(info.result, asyncio.CancelledError)  # arq's "aborted before start"
    assert await redis.zscore(abort_jobs_ss, job.job_id) is None


async def test_a_job_whose_data_is_gone_fails_as_arq_fails_it(redis):
    await redis.zadd(QUEUE, {"gone": timestamp_ms() - 1_000})

    await run_claimed(running_worker(redis))

    assert await redis.zscore(QUEUE, "gone") is None  # taken off, no result to refuse it
    assert await redis.exists(in_progress_key_prefix + "gone") == 0


async def test_an_arq_that_reads_otherwise_gets_its_jobs_read_by_itself(redis):
    """A claim answered a first read arq did not ask (here: without the abort request):
    the worker leaves first reads to arq from then on, and the job runs at its next claim."""
    job = await redis.enqueue_job("echo", 7, _queue_name=QUEUE)
    assert job is not None
    worker = running_worker(redis)
    worker._claimer = Claimer(redis, QUEUE, depth=10, aborts=False)

    await run_claimed(worker)
    await run_claimed(worker)

    assert not worker._claimer.answers_reads
    assert await job.result(timeout=1) == {"value": 7, "try": 2}  # counted by both reads
