"""``worker.runtime.heartbeats`` (the writer) and ``worker.ops.workers`` (the reader) on real
Redis: each worker's own beat, read back, expired, removed."""

from __future__ import annotations

from datetime import timedelta

from arq.connections import ArqRedis
from arq.utils import timestamp_ms

from domain.db import utcnow
from tests.support.fleet import wait_for
from worker.ops.workers import (
    LOST_AFTER_BEATS,
    READY,
    STOPPING,
    index_key,
    read_roster,
    worker_key,
)
from worker.runtime.heartbeats import FORGET_AFTER_SECONDS, Heartbeat

QUEUE = "test:heartbeats"
EVERY = 0.2  # seconds between beats: a silent worker is gone after 0.6 s


def heartbeat(redis: ArqRedis, worker_id: str, running: int = 0, every: float = EVERY) -> Heartbeat:
    return Heartbeat(redis, QUEUE, worker_id, every, running=lambda: running)


async def test_each_worker_is_read_back_with_its_own_beat(redis):
    first, second = heartbeat(redis, "host-a:1", running=3), heartbeat(redis, "host-b:2")
    await first.start()
    await second.start()
    try:
        workers = (await read_roster(redis, QUEUE)).live
    finally:
        await first.stop()
        await second.stop()

    assert [(w.worker_id, w.running, w.state) for w in workers] == [
        ("host-a:1", 3, READY),
        ("host-b:2", 0, READY),
    ]
    assert all(w.queue_name == QUEUE for w in workers)
    assert all(w.started_at.tzinfo is not None and w.beat_at >= w.started_at for w in workers)
    assert utcnow() - workers[0].beat_at < timedelta(seconds=5)


async def test_a_stopped_worker_leaves_no_trace(redis):
    leaving, staying = heartbeat(redis, "host:1"), heartbeat(redis, "host:2")
    await leaving.start()
    await staying.start()
    await leaving.stop()
    try:
        roster = await read_roster(redis, QUEUE)
    finally:
        await staying.stop()

    assert [w.worker_id for w in roster.live] == ["host:2"]
    assert roster.lost == []
    assert not await redis.exists(worker_key(QUEUE, "host:1"))


async def test_stopping_is_written_at_once(redis):
    beat = heartbeat(redis, "host:1", every=30)  # no periodic beat during the test
    await beat.start()
    try:
        beat.stopping()

        async def says_stopping() -> bool:
            return [w.state for w in (await read_roster(redis, QUEUE)).live] == [STOPPING]

        await wait_for(says_stopping, within=5, what="the worker says it is stopping")
    finally:
        await beat.stop()


async def test_beats_keep_a_worker_alive_past_its_ttl(redis):
    beat = heartbeat(redis, "host:1")
    await beat.start()
    try:
        await wait_for(lambda: _beaten(beat, 10), within=10, what="ten beats")
        assert [w.worker_id for w in (await read_roster(redis, QUEUE)).live] == ["host:1"]
    finally:
        await beat.stop()


async def _beaten(beat: Heartbeat, times: int) -> bool:
    return beat.beats >= times


async def test_a_silent_worker_expires_and_is_listed_as_lost(redis):
    silent, alive = heartbeat(redis, "host:1"), heartbeat(redis, "host:2")
    await silent.beat()  # one beat, then nothing: as a worker stuck or killed
    await alive.start()
    try:

        async def silent_is_gone() -> bool:
            return [w.worker_id for w in (await read_roster(redis, QUEUE)).live] == ["host:2"]

        await wait_for(silent_is_gone, within=10, what="the silent worker expires")
        roster = await read_roster(redis, QUEUE)
    finally:
        await alive.stop()

    assert [lost.worker_id for lost in roster.lost] == ["host:1"]
    assert utcnow() - roster.lost[0].last_beat_at < timedelta(seconds=10)


async def test_garbage_in_a_worker_key_is_skipped(redis):
    await redis.zadd(index_key(QUEUE), {"host:1": 0})
    await redis.set(worker_key(QUEUE, "host:1"), b"{not json")

    roster = await read_roster(redis, QUEUE)

    assert roster.live == []
    assert roster.lost == []


async def test_no_workers_no_round_trips_beyond_the_index(redis):
    assert (await read_roster(redis, QUEUE)).live == []


async def test_a_beat_lives_three_beats_and_is_indexed_at_its_time(redis):
    """One script call per beat, with the roster's semantics: the key lapses after
    ``LOST_AFTER_BEATS`` missed beats, the index keeps the time of the last."""
    every = 30  # no periodic beat during the test
    await heartbeat(redis, "host:1", every=every).beat()

    life_ms = await redis.pttl(worker_key(QUEUE, "host:1"))
    assert (LOST_AFTER_BEATS - 1) * every * 1000 < life_ms <= LOST_AFTER_BEATS * every * 1000
    [beat] = (await read_roster(redis, QUEUE)).live
    indexed = await redis.zscore(index_key(QUEUE), "host:1")
    assert indexed == int(beat.beat_at.timestamp() * 1000)


async def test_a_worker_starting_prunes_the_forgotten_and_those_beating_from_the_future(redis):
    now, day_ms = timestamp_ms(), FORGET_AFTER_SECONDS * 1000
    old, recent, ahead = now - day_ms - 60_000, now - 60_000, now + 2 * day_ms
    await redis.zadd(index_key(QUEUE), {"forgotten:1": old, "recent:1": recent, "ahead:1": ahead})
    await heartbeat(redis, "host:1").beat()

    assert await redis.zrange(index_key(QUEUE), 0, -1) == [b"recent:1", b"host:1"]
