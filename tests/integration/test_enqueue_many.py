"""``worker.ops.enqueue.enqueue_many`` writes what arq's ``enqueue_job`` writes, on real Redis."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from arq import Worker
from arq.connections import ArqRedis, RedisSettings
from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix
from arq.jobs import Job, JobStatus
from arq.worker import func

from worker.bootstrap import open_pool
from worker.ops import enqueue
from worker.ops.enqueue import enqueue_many
from worker.serialization import MINTED_KWARG, deserialize, job_deserializer, serialize
from worker.settings import Settings
from worker.testing.scratch import RedisSpace

QUEUE = "test:bulk"


@pytest.fixture
async def pool(clean_redis: RedisSpace) -> AsyncIterator[ArqRedis]:
    redis = await open_pool(Settings(queue_name=QUEUE), RedisSettings.from_dsn(clean_redis.url))
    yield redis
    await redis.aclose()


async def echo(ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    return {"seen": payload["n"], "job_id": ctx["job_id"]}


async def drain(pool: ArqRedis) -> Worker:
    worker = Worker(
        [func(echo, name="echo")],
        redis_pool=pool,
        queue_name=QUEUE,
        burst=True,
        poll_delay=0,
        handle_signals=False,
        job_serializer=serialize,
        job_deserializer=deserialize,
    )
    await worker.main()
    return worker


async def close_quietly(worker: Worker) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Call to deprecated close\.")
        await worker.close()


async def test_an_arq_worker_runs_every_job_with_its_payload(pool: ArqRedis):
    ids = await enqueue_many(pool, "echo", [{"n": n} for n in range(3)], ["a", "b", "c"])
    worker = await drain(pool)
    try:
        results = [await Job(i, pool, _deserializer=deserialize).result(timeout=5) for i in ids]
    finally:
        await close_quietly(worker)
    assert ids == ["a", "b", "c"]
    assert results == [{"seen": n, "job_id": job_id} for n, job_id in enumerate(ids)]


async def test_keys_match_enqueue_job(pool: ArqRedis):
    await enqueue_many(pool, "echo", [{"n": 1}], ["bulk"])
    await pool.enqueue_job("echo", {"n": 1}, _job_id="single")
    bulk = await Job("bulk", pool, _deserializer=deserialize).info()
    single = await Job("single", pool, _deserializer=deserialize).info()
    assert bulk is not None
    assert single is not None
    assert (bulk.function, bulk.args, bulk.kwargs) == (single.function, single.args, single.kwargs)
    assert await Job("bulk", pool, _queue_name=QUEUE).status() == JobStatus.queued
    assert abs((await pool.pttl(job_key_prefix + "bulk")) - expires_extra_ms) < 60_000
    scores = dict(await pool.zrange(QUEUE, 0, -1, withscores=True))
    assert abs(scores[b"bulk"] - scores[b"single"]) < 60_000


async def test_ids_queued_finished_or_repeated_are_skipped(pool: ArqRedis):
    await pool.enqueue_job("echo", {"n": 0}, _job_id="queued")
    await pool.set(result_key_prefix + "finished", b"{}")
    payloads = [{"n": n} for n in range(4)]
    ids = await enqueue_many(pool, "echo", payloads, ["queued", "finished", "new", "new"])
    assert ids == ["new"]
    assert await pool.zcard(QUEUE) == 2
    info = await Job("new", pool, _deserializer=deserialize).info()
    assert info is not None
    assert list(info.args) == [{"n": 2}]


async def test_many_jobs_span_several_script_calls(pool: ArqRedis, monkeypatch):
    monkeypatch.setattr(enqueue, "MAX_JOBS_PER_CALL", 7)
    ids = await enqueue_many(pool, "echo", [{"n": n} for n in range(50)])
    assert len(set(ids)) == 50
    assert await pool.zcard(QUEUE) == 50


async def test_payloads_from_an_iterator_are_made_as_they_are_enqueued(pool: ArqRedis, monkeypatch):
    monkeypatch.setattr(enqueue, "MAX_JOBS_PER_CALL", 10)

    def payloads() -> Iterator[dict[str, int]]:
        for n in range(50):
            if n == 25:
                raise RuntimeError("the producer stopped")
            yield {"n": n}

    with pytest.raises(RuntimeError, match="producer stopped"):
        await enqueue_many(pool, "echo", payloads())
    assert await pool.zcard(QUEUE) == 20  # two full calls sent before the 25th was made


async def test_job_ids_must_match_payloads(pool: ArqRedis):
    with pytest.raises(ValueError, match="2 job ids for 1 payloads"):
        await enqueue_many(pool, "echo", [{"n": 1}], ["a", "b"])
    assert await pool.zcard(QUEUE) == 0


async def test_an_id_it_mints_is_marked_for_the_worker_alone(pool: ArqRedis):
    minted, given = await enqueue_many(pool, "echo", [{"n": 1}, {"n": 2}], [None, "given"])
    read = job_deserializer(1 << 20)  # the worker's
    minted_job = read(await pool.get(job_key_prefix + minted))
    given_job = read(await pool.get(job_key_prefix + given))
    assert (minted_job["k"], given_job["k"]) == ({MINTED_KWARG: True}, {})
    info = await Job(minted, pool, _deserializer=deserialize).info()  # as the faces read it
    assert info is not None
    assert (info.args, info.kwargs) == ([{"n": 1}], {})


def test_a_mark_among_a_producers_own_keyword_arguments_is_dropped():
    envelope = {"t": None, "f": "echo", "a": [], "k": {"n": 1, MINTED_KWARG: True}, "et": 1}
    assert job_deserializer(1 << 20)(orjson.dumps(envelope))["k"] == {"n": 1}
