"""A claimed job whose data a worker does not find (``worker.runtime.vanished``), on real
Redis: never failed with a result that would refuse its id to its producer."""

from __future__ import annotations

import asyncio
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.utils import timestamp_ms

from worker.ops.enqueue import enqueue_many
from worker.runtime.claiming import ClaimingWorker
from worker.runtime.vanished import drop_if_gone
from worker.serialization import deserialize, serialize
from worker.settings import Settings

QUEUE = "test:vanished"


async def echo(ctx: dict[str, Any], payload: Any = None) -> str:
    return "ran"


def worker_on(redis: ArqRedis) -> ClaimingWorker:
    return ClaimingWorker(
        [echo],
        queue_name=QUEUE,
        redis_pool=redis,
        handle_signals=False,
        max_jobs=5,
        keep_result=3600,
        job_serializer=serialize,
        job_deserializer=deserialize,
        ctx={"settings": Settings(lease_seconds=8)},
    )


async def claim_and_run(worker: ClaimingWorker) -> None:
    await worker.claim_ready()
    await asyncio.gather(*worker.tasks.values())


async def test_a_job_queued_without_its_data_is_dropped_and_can_be_enqueued_again(redis):
    # What a worker meets in a split brain (claimed on one primary, read on the other) or
    # after a retry re-scored a job another delivery had finished: an id without data.
    await redis.zadd(QUEUE, {"lost": timestamp_ms() - 1_000})
    worker = worker_on(redis)

    await claim_and_run(worker)

    assert await redis.zscore(QUEUE, "lost") is None
    assert await redis.exists(in_progress_key_prefix + "lost") == 0
    assert await redis.exists(result_key_prefix + "lost") == 0  # arq's "job expired": none
    # The producer's enqueue of it again is taken, and it runs.
    assert await enqueue_many(redis, "echo", [{}], ["lost"], queue_name=QUEUE) == ["lost"]
    await claim_and_run(worker)
    assert await redis.exists(result_key_prefix + "lost") == 1
    assert await redis.zscore(QUEUE, "lost") is None


async def test_a_job_whose_data_is_on_the_server_stays_queued(redis):
    # Read on another primary, which had no data for it: here, where it is, it stays.
    await enqueue_many(redis, "echo", [{}], ["here"], queue_name=QUEUE)

    assert await drop_if_gone(redis, QUEUE, "here") is False
    assert await redis.zscore(QUEUE, "here") is not None
    assert await redis.exists(job_key_prefix + "here") == 1
