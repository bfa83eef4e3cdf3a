"""``worker.ops.queue_prometheus`` on real Redis: known jobs enqueued, the gauges parsed back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms

from tests.support.scrape import Samples, parse
from worker.ops.controls import pause, target_of
from worker.ops.enqueue import enqueue_many
from worker.ops.queue_prometheus import read_exposition
from worker.ops.workers import worker_key
from worker.registry import GENERATE_PROFILES, RECORD_METRICS
from worker.runtime.heartbeats import Heartbeat
from worker.testing.scratch import RedisSpace

QUEUE = "test:queue-prometheus"


@pytest.fixture
async def redis(clean_redis: RedisSpace) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(clean_redis.url), default_queue_name=QUEUE)
    yield pool
    await pool.aclose()


def samples(text: bytes) -> Samples:
    return parse(text.decode())


async def test_an_empty_queue_with_no_workers(redis):
    found = samples(await read_exposition(redis, QUEUE))
    lanes_and_pauses = {key for key in found if key[0] in {"dbjobs_lane_jobs", "dbjobs_paused"}}

    assert {key: found.pop(key) for key in lanes_and_pauses} == dict.fromkeys(lanes_and_pauses, 0)
    assert found == {
        ("dbjobs_queue_jobs", (("state", "ready"),)): 0,
        ("dbjobs_queue_jobs", (("state", "running"),)): 0,
        ("dbjobs_queue_jobs", (("state", "deferred"),)): 0,
        ("dbjobs_queue_oldest_ready_job_age_seconds", ()): 0,
        ("dbjobs_workers_alive", ()): 0,
        ("dbjobs_workers_late", ()): 0,
        ("dbjobs_workers_lost", ()): 0,
        ("dbjobs_quarantine_entries", ()): 0,
    }


async def test_known_jobs_show_as_ready_running_and_deferred(redis):
    for step in range(4):
        await redis.enqueue_job("record_metric", {"step": step}, _job_id=f"ready:{step}")
    await redis.enqueue_job("record_metric", {}, _job_id="later", _defer_by=timedelta(hours=1))
    # The oldest job of all is running: it must count as neither ready nor waiting longest.
    await redis.zadd(QUEUE, {"running": timestamp_ms() - 600_000})
    await redis.set(in_progress_key_prefix + "running", b"lease")
    await redis.zadd(QUEUE, {"waiting": timestamp_ms() - 60_000})  # due a minute ago
    busy = Heartbeat(redis, QUEUE, "host:1", 30, running=lambda: 1)
    idle = Heartbeat(redis, QUEUE, "host:2", 30, running=lambda: 0)
    await busy.start()
    await idle.start()
    try:
        found = samples(await read_exposition(redis, QUEUE))
    finally:
        await busy.stop()
        await idle.stop()

    assert found[("dbjobs_queue_jobs", (("state", "ready"),))] == 5  # 4 + "waiting"
    assert found[("dbjobs_queue_jobs", (("state", "running"),))] == 1
    assert found[("dbjobs_queue_jobs", (("state", "deferred"),))] == 1
    assert 59 < found[("dbjobs_queue_oldest_ready_job_age_seconds", ())] < 120
    assert found[("dbjobs_workers_alive", ())] == 2
    assert found[("dbjobs_workers_lost", ())] == 0


async def test_a_silent_worker_counts_as_lost_not_alive(redis):
    silent = Heartbeat(redis, QUEUE, "host:1", 0.1, running=lambda: 3)
    await silent.beat()
    await redis.delete(worker_key(QUEUE, "host:1"))  # as if its key had expired

    found = samples(await read_exposition(redis, QUEUE))

    assert found[("dbjobs_workers_alive", ())] == 0
    assert found[("dbjobs_workers_lost", ())] == 1
    assert found[("dbjobs_queue_jobs", (("state", "running"),))] == 0


async def test_a_paused_lane_and_kind_show_as_paused_beside_the_lanes_depth(redis):
    await enqueue_many(redis, RECORD_METRICS.name, [{"run_id": 1}] * 3)
    await pause(redis, QUEUE, target_of("bulk"))
    await pause(redis, QUEUE, target_of("generate-profiles"))

    found = samples(await read_exposition(redis, QUEUE))

    assert found[("dbjobs_lane_jobs", (("lane", "bulk"), ("state", "due")))] == 3
    assert found[("dbjobs_lane_jobs", (("lane", "interactive"), ("state", "due")))] == 0
    assert found[("dbjobs_paused", (("kind", "lane"), ("name", "bulk")))] == 1
    assert found[("dbjobs_paused", (("kind", "lane"), ("name", "interactive")))] == 0
    assert found[("dbjobs_paused", (("kind", "job"), ("name", GENERATE_PROFILES.name)))] == 1
    assert found[("dbjobs_paused", (("kind", "job"), ("name", RECORD_METRICS.name)))] == 0
