"""``JOBS_ENQUEUE_REPLICAS``: an enqueue returns once that many replicas hold its jobs (Redis
``WAIT``, on the connection that wrote them), else fails saying so."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix

from tests.support.sentinels import replicated_pair
from tests.support.servers import RedisServer
from worker.bootstrap import open_pool
from worker.ops.actions import NotReplicated
from worker.ops.enqueue import ReplicaAck, enqueue_many
from worker.settings import Settings
from worker.testing.scratch import RedisSpace

QUEUE = "test:replicas"
PAYLOADS = [{"n": n} for n in range(3)]
IDS = ["r-0", "r-1", "r-2"]


async def open_on(url: str) -> ArqRedis:
    return await open_pool(Settings(queue_name=QUEUE), RedisSettings.from_dsn(url))


@pytest.fixture
async def alone(clean_redis: RedisSpace) -> AsyncIterator[ArqRedis]:
    """A primary without replicas: the suite's Redis."""
    pool = await open_on(clean_redis.url)
    yield pool
    await pool.aclose()


@pytest.fixture
def pair(redis_server_binary: str) -> Iterator[tuple[RedisServer, RedisServer]]:
    with replicated_pair() as servers:
        yield servers


async def test_without_the_replicas_asked_for_the_enqueue_fails_naming_the_setting(alone):
    with pytest.raises(NotReplicated, match=r"0 of the 1 Redis replicas asked for") as refused:
        await enqueue_many(alone, "echo", PAYLOADS, IDS, replicas=ReplicaAck(1, 20))
    assert "JOBS_ENQUEUE_REPLICAS" in str(refused.value)
    assert refused.value.job_ids == IDS
    # Written on the primary all the same: enqueueing again under the same ids adds nothing.
    assert await alone.zcard(QUEUE) == 3
    assert await enqueue_many(alone, "echo", PAYLOADS, IDS) == []


async def test_once_the_enqueue_returns_the_replica_holds_every_job(pair):
    primary, replica = pair
    pool = await open_on(primary.url())
    try:
        ids = [f"job-{n}" for n in range(2500)]  # three batches, three WAITs
        payloads = [{"n": n} for n in range(2500)]
        assert await enqueue_many(pool, "echo", payloads, ids, replicas=ReplicaAck(1, 5000)) == ids
    finally:
        await pool.aclose()
    with redis.Redis(port=replica.port) as copy:  # read at once: no wait for replication
        assert copy.zcard(QUEUE) == 2500
        assert copy.exists(*(job_key_prefix + job_id for job_id in ids)) == 2500


async def test_a_replica_that_does_not_answer_fails_the_enqueue_until_it_does(pair):
    primary, replica = pair
    pool = await open_on(primary.url())
    replica.freeze()  # connected, acknowledging nothing
    try:
        with pytest.raises(NotReplicated, match="0 of the 1"):
            await enqueue_many(pool, "echo", PAYLOADS, IDS, replicas=ReplicaAck(1, 200))
    finally:
        replica.thaw()
    try:
        # The producer's retry: nothing new to write, and now the replica acknowledges it.
        assert await enqueue_many(pool, "echo", PAYLOADS, IDS, replicas=ReplicaAck(1, 5000)) == []
    finally:
        await pool.aclose()
    with redis.Redis(port=replica.port) as copy:
        assert copy.zcard(QUEUE) == 3
