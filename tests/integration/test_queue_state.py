"""``worker.ops.queue_state`` on real Redis: one read of the queue gives what alerts count
and, when asked, the head of the queue that the console's overview shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms

from worker.ops.queue_state import MIN_HEAD_DEPTH, lease_value, read_queue
from worker.quarantine import BAD_ID, Quarantined, quarantine_key
from worker.runtime.heartbeats import Heartbeat
from worker.serialization import serialize
from worker.testing.scratch import RedisSpace

QUEUE = "test:queue-state"


@pytest.fixture
async def redis(clean_redis: RedisSpace) -> AsyncIterator[ArqRedis]:
    """A producer's pool on QUEUE, writing jobs as JSON as every producer here does."""
    settings = RedisSettings.from_dsn(clean_redis.url)
    pool = await create_pool(settings, default_queue_name=QUEUE, job_serializer=serialize)
    yield pool
    await pool.aclose()


async def test_one_read_counts_the_queue_and_reads_its_head(redis):
    for step in range(3):
        await redis.enqueue_job("record_metric", {}, _job_id=f"ready:{step}")
    later = timedelta(hours=1)
    await redis.enqueue_job(
        "create_profile", {}, _job_id="later", _defer_by=later, _queue_name=QUEUE
    )
    await redis.enqueue_job("create_profile", {}, _job_id="running")
    await redis.set(in_progress_key_prefix + "running", lease_value("host:1"))
    await redis.zadd(QUEUE, {b"\xff-not-utf8": timestamp_ms()})
    record = Quarantined("\\xfe", BAD_ID, "its id is not UTF-8 text", "2026-01-01", "host:1")
    await redis.lpush(quarantine_key(QUEUE), record.to_json())
    beat = Heartbeat(redis, QUEUE, "host:1", 30, running=lambda: 1)
    await beat.start()
    try:
        counted = await read_queue(redis, QUEUE)
        state = await read_queue(redis, QUEUE, head=MIN_HEAD_DEPTH)
    finally:
        await beat.stop()

    assert counted.head is None  # what an alert reads: no entry read one by one
    assert (counted.due, counted.deferred, counted.quarantined) == (5, 1, 1)
    assert (state.due, state.deferred, state.total, state.quarantined) == (5, 1, 6, 1)
    assert (state.running, state.ready) == (1, 4)  # the heartbeat's running job is not ready
    assert [worker.worker_id for worker in state.workers.live] == ["host:1"]
    head = state.head
    assert head is not None
    running = [(job.job_id, job.function, job.worker) for job in head.running]
    assert running == [("running", "create_profile", "host:1")]
    # Waiting means due and not running: the deferred create_profile is not counted.
    assert head.by_function == {"record_metric": 3}
    assert (head.sampled, head.unreadable) == (6, 1)
    assert head.quarantine == [record]


async def test_a_queue_that_is_not_a_sorted_set_reads_as_empty_and_unreadable(redis):
    await redis.set(QUEUE, b"not a queue")

    state = await read_queue(redis, QUEUE, head=MIN_HEAD_DEPTH)

    assert (state.total, state.oldest_ready_age) == (0, 0.0)
    assert state.head is not None
    assert (state.head.sampled, state.head.unreadable, state.head.running) == (0, 1, [])
