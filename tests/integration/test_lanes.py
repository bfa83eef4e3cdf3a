"""Lanes, pauses and caps in the claim script, on real Redis (``worker.runtime.claim_script``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms

from worker.lanes import SHARE_EVERY, Lane, lane_queue, limits_key, paused_key, turn_key
from worker.ops.enqueue import enqueue_many
from worker.registry import CREATE_PROFILE, RECORD_METRICS
from worker.runtime.claiming import ClaimingWorker
from worker.runtime.polling import LANE_QUEUE
from worker.settings import Settings

QUEUE = "test:lanes"
PROFILE = {"email": "a@example.com", "full_name": "A"}
POINTS = {"run_id": 1, "points": []}


class Recording(ClaimingWorker):
    """Runs nothing: notes each job claimed and the queue its task saw as its own."""

    started: list[tuple[str, str]]

    async def run_job(self, job_id: str, score: int) -> None:
        self.started.append((job_id, self.queue_name))


async def noop(ctx: dict[str, Any]) -> None:
    return None


def worker_on(redis: ArqRedis, max_jobs: int) -> Recording:
    worker = Recording(
        [noop],
        queue_name=QUEUE,
        redis_pool=redis,
        handle_signals=False,
        max_jobs=max_jobs,
        ctx={"settings": Settings(lease_seconds=8)},
    )
    worker.started = []
    return worker


async def enqueue(redis: ArqRedis, function: str, count: int, lane: Lane | None = None) -> None:
    payload = PROFILE if function == CREATE_PROFILE.name else POINTS
    await enqueue_many(redis, function, [payload] * count, queue_name=QUEUE, lane=lane)


async def claim(worker: Recording, *, urgent_only: bool = False) -> list[tuple[str, str]]:
    """The jobs of one claim, with their lane's queue; the worker's slots freed after."""
    worker.started = []
    await worker.claim_ready(urgent_only=urgent_only)
    await asyncio.gather(*worker.tasks.values())
    worker.job_counter = 0
    return worker.started


async def finish(redis: ArqRedis, started: list[tuple[str, str]]) -> None:
    for job_id, queue in started:
        await redis.zrem(queue, job_id)
        await redis.delete(in_progress_key_prefix + job_id)


def lanes_of(started: list[tuple[str, str]]) -> list[str]:
    names = {lane_queue(QUEUE, lane): lane for lane in ("interactive", "maintenance", "bulk")}
    return [names[queue] for _, queue in started]


async def test_the_most_urgent_lane_goes_first_whatever_waited_longer(redis):
    await enqueue(redis, RECORD_METRICS.name, 5)  # bulk by declaration, enqueued first
    await enqueue(redis, CREATE_PROFILE.name, 2)
    await enqueue(redis, CREATE_PROFILE.name, 1, lane="maintenance")
    worker = worker_on(redis, max_jobs=4)

    assert lanes_of(await claim(worker)) == ["interactive", "interactive", "maintenance", "bulk"]


async def test_a_job_sent_down_another_lane_waits_there(redis):
    await enqueue(redis, RECORD_METRICS.name, 1, lane="interactive")

    assert await redis.zcard(QUEUE) == 1
    assert await redis.zcard(lane_queue(QUEUE, "bulk")) == 0


async def test_the_last_slot_is_kept_for_the_most_urgent_lane(redis):
    await enqueue(redis, RECORD_METRICS.name, 10)
    worker = worker_on(redis, max_jobs=3)

    assert lanes_of(await claim(worker)) == ["bulk", "bulk"]


async def test_bulk_keeps_its_share_while_interactive_work_never_stops(redis):
    await enqueue(redis, RECORD_METRICS.name, 100)
    worker = worker_on(redis, max_jobs=1)
    served: Counter[str] = Counter()
    for _ in range(10 * SHARE_EVERY):
        await enqueue(redis, CREATE_PROFILE.name, 1)  # always one interactive job ready
        started = await claim(worker)
        served.update(lanes_of(started))
        await finish(redis, started)

    assert served["bulk"] == 10
    assert served["interactive"] == 90


async def test_a_paused_lane_or_kind_keeps_its_jobs_until_resumed(redis):
    await enqueue(redis, RECORD_METRICS.name, 2)
    await enqueue(redis, CREATE_PROFILE.name, 2, lane="bulk")
    await redis.sadd(paused_key(QUEUE), f"job:{RECORD_METRICS.name}")
    worker = worker_on(redis, max_jobs=10)

    first = await claim(worker)
    await redis.sadd(paused_key(QUEUE), "lane:bulk")
    await finish(redis, first)
    await enqueue(redis, CREATE_PROFILE.name, 1, lane="bulk")
    nothing = await claim(worker)
    await redis.delete(paused_key(QUEUE))
    rest = await claim(worker)

    assert len(first) == 2  # the two profiles: the metric batches are paused
    assert nothing == []
    assert len(rest) == 3  # the batches and the profile enqueued while the lane was paused


async def test_a_cap_holds_until_a_claim_ends_or_its_lease_lapses(redis):
    await enqueue(redis, CREATE_PROFILE.name, 5)
    await redis.hset(limits_key(QUEUE), CREATE_PROFILE.name, 2)
    worker = worker_on(redis, max_jobs=10)

    first = await claim(worker)
    none_more = await claim(worker)
    await redis.delete(in_progress_key_prefix + first[0][0])  # ended, or its lease lapsed
    third = await claim(worker)

    assert (len(first), len(none_more), len(third)) == (2, 0, 1)


async def test_a_claim_held_back_by_a_cap_tells_when_the_caps_first_lease_lapses(redis):
    """An idle worker then wakes when a dead worker's slot comes back: nobody rings then."""
    await enqueue(redis, CREATE_PROFILE.name, 2)
    await redis.hset(limits_key(QUEUE), CREATE_PROFILE.name, 1)
    worker = worker_on(redis, max_jobs=10)
    [(job_id, _)] = await claim(worker)

    held_back = await worker.claim_ready()

    assert held_back is not None
    assert held_back.jobs == []
    lapses_at = timestamp_ms() + await redis.pttl(in_progress_key_prefix + job_id)
    assert held_back.next_due_ms is not None
    assert abs(held_back.next_due_ms - lapses_at) < 1_000


async def test_a_job_behind_a_long_capped_run_is_found_within_a_few_claims(redis):
    """Each claim reads the capped run's first page and one more, a page further on each
    time: a job 90 entries deep is not found by the first claim, and is by the second."""
    await redis.hset(limits_key(QUEUE), CREATE_PROFILE.name, 0)
    await enqueue(redis, CREATE_PROFILE.name, 90)
    await asyncio.sleep(0.002)  # a later score: queued behind them
    await enqueue(redis, RECORD_METRICS.name, 1, lane="interactive")
    worker = worker_on(redis, max_jobs=10)  # depth: arq's 100 for 10 jobs, 4 pages

    assert [len(await claim(worker)) for _ in range(2)] == [0, 1]


async def test_between_polls_a_claim_reads_the_most_urgent_lane_alone(redis):
    await enqueue(redis, CREATE_PROFILE.name, 1, lane="bulk")
    await enqueue(redis, CREATE_PROFILE.name, 1)
    worker = worker_on(redis, max_jobs=10)

    urgent = await claim(worker, urgent_only=True)
    assert lanes_of(urgent) == ["interactive"]
    assert await redis.get(turn_key(QUEUE)) is None  # not a turn of the lanes' share
    assert lanes_of(await claim(worker)) == ["bulk"]


async def test_an_idle_claim_tells_when_the_first_deferred_job_is_due(redis):
    later = timestamp_ms() + 60_000
    await redis.zadd(lane_queue(QUEUE, "bulk"), {"later": later})
    worker = worker_on(redis, max_jobs=2)

    claimed = await worker.claim_ready()

    assert claimed is not None
    assert claimed.jobs == []
    assert claimed.next_due_ms == later


async def test_a_claim_counts_the_ready_interactive_jobs_something_holds(redis):
    """Running elsewhere, or held by a claim whose worker died: the lease keeper caps those."""
    await enqueue(redis, CREATE_PROFILE.name, 3)
    await enqueue(redis, RECORD_METRICS.name, 1)
    worker = worker_on(redis, max_jobs=10)
    taken = await claim(worker)
    await enqueue(redis, CREATE_PROFILE.name, 1)

    claimed = await worker.claim_ready()

    assert len(taken) == 4
    assert claimed is not None
    assert (len(claimed.jobs), claimed.held) == (1, 3)  # the bulk job's claim not counted


async def test_a_jobs_task_sees_its_lane_as_its_queue(redis):
    await enqueue(redis, RECORD_METRICS.name, 1)
    worker = worker_on(redis, max_jobs=2)
    token = LANE_QUEUE.set(None)

    ((_, queue),) = await claim(worker)

    LANE_QUEUE.reset(token)
    assert queue == lane_queue(QUEUE, "bulk")
    assert worker.queue_name == QUEUE  # outside the job's task
