"""Each worker's own heartbeat in Redis: who is alive, since when, how busy, in what state.

arq keeps one health key per queue, shared by every worker of it: one stuck worker among
three looks healthy, and one stopping deletes the key for all. Here each worker writes its
own key (JSON, expiring after ``LIVENESS_BEATS`` missed beats) and its id in an index (a
sorted set scored by the time of its last beat), so a reader lists the workers of a queue
in two round trips (ZRANGE, MGET), O(workers), without a SCAN of the keyspace.

A worker is alive while its key exists: Redis expires it on its own clock, so no clock
of the readers or the workers decides. A worker that stopped beating (stuck, killed) stays
in the index, with the time of its last beat, for ``FORGET_AFTER_SECONDS`` more: a reader
can tell "gone silent 20 s ago" from "never was".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from time import monotonic
from typing import Any

import orjson
from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from domain.db import utcnow
from worker.quarantine import damaged, move_aside
from worker.runtime.tasks import cancel_and_wait

log = logging.getLogger("worker.heartbeats")

KEY_PREFIX = "dbjobs:worker:"
INDEX_PREFIX = "dbjobs:workers:"
LIVENESS_BEATS = 3  # beats a worker may miss before it counts as gone
FORGET_AFTER_SECONDS = 300  # how long a silent worker stays listed as lost
STARTING, READY, STOPPING = "starting", "ready", "stopping"
WORKER_STATES = (STARTING, READY, STOPPING)


def worker_key(queue_name: str, worker_id: str) -> str:
    return f"{KEY_PREFIX}{queue_name}:{worker_id}"


def index_key(queue_name: str) -> str:
    return INDEX_PREFIX + queue_name


@dataclass(frozen=True)
class WorkerBeat:
    worker_id: str  # "host:pid", the same as Services.worker_id
    queue_name: str
    started_at: datetime  # tz-aware
    beat_at: datetime  # last heartbeat, tz-aware
    running: int  # jobs running now on that worker
    state: str  # STARTING | READY | STOPPING

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: bytes) -> WorkerBeat | None:
        """The beat a worker wrote; None for anything else (never a crash of the reader)."""
        try:
            fields = orjson.loads(raw)
            return cls(
                worker_id=str(fields["worker_id"]),
                queue_name=str(fields["queue_name"]),
                started_at=_aware(fields["started_at"]),
                beat_at=_aware(fields["beat_at"]),
                running=int(fields["running"]),
                state=str(fields["state"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class LostWorker:
    """A worker whose heartbeat stopped without its saying goodbye: stuck or killed."""

    worker_id: str
    last_beat_at: datetime


@dataclass(frozen=True)
class Roster:
    live: list[WorkerBeat]
    lost: list[LostWorker]
    unreadable: int = 0  # entries skipped: not UTF-8, not a beat, or an index not a sorted set


def _aware(text: Any) -> datetime:
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError("a heartbeat time without a timezone")
    return moment


async def read_roster(redis: ArqRedis, queue_name: str) -> Roster:
    """The live workers of ``queue_name`` and those gone silent lately, each by worker id.

    What a worker did not write (an id that is not UTF-8, a beat that is not one, an index
    of another type) is skipped and counted, never a failure of the reader."""
    try:
        members = await redis.zrange(index_key(queue_name), 0, -1, withscores=True)
    except ResponseError:  # not a sorted set: the next worker to beat moves it aside
        return Roster([], [], unreadable=1)
    entries = [(_text(member), last_ms) for member, last_ms in members]
    readable = [(worker_id, last_ms) for worker_id, last_ms in entries if worker_id is not None]
    if not readable:
        return Roster([], [], unreadable=len(entries))
    raws = await redis.mget([worker_key(queue_name, worker_id) for worker_id, _ in readable])
    live: list[WorkerBeat] = []
    lost: list[LostWorker] = []
    for (worker_id, last_ms), raw in zip(readable, raws, strict=True):
        if raw is None:  # expired, or not a string (MGET reads those as nothing)
            lost.append(LostWorker(worker_id, _moment(last_ms)))
        elif (beat := WorkerBeat.from_json(raw)) is not None:
            live.append(beat)
    unreadable = len(entries) - len(live) - len(lost)
    return Roster(sorted(live, key=_by_id), sorted(lost, key=_by_id), unreadable)


def _text(member: bytes) -> str | None:
    try:
        return member.decode()
    except UnicodeDecodeError:
        return None


def _moment(ms: float) -> datetime:
    """A beat's time from its score; one out of any date's range as the latest date."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=UTC)


async def read_workers(redis: ArqRedis, queue_name: str) -> list[WorkerBeat]:
    """The live workers of ``queue_name``, by worker id."""
    return (await read_roster(redis, queue_name)).live


def _by_id(worker: WorkerBeat | LostWorker) -> str:
    return worker.worker_id


class Heartbeat:
    """A worker's background task that writes its beat every ``every`` seconds.

    ``stopping()`` may be called from a signal handler: it only flips the state and wakes
    the task, which writes the new state at once.
    """

    def __init__(
        self,
        redis: ArqRedis,
        queue_name: str,
        worker_id: str,
        every: float,
        running: Callable[[], int],
        database: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.worker_id = worker_id
        self.every = every
        self.running = running
        self.state = STARTING
        self.started_at = utcnow()
        self.database = database  # pinged with each beat, for readiness probes
        # What probes read (``worker.runtime.probes``), from another thread: monotonic times.
        self.ticked_at = monotonic()  # the event loop last ran the beat
        self.written_at: float | None = None  # Redis last took a beat
        self.database_at: float | None = None  # PostgreSQL last answered
        self.beats = 0
        self._key = worker_key(queue_name, worker_id)
        self._index = index_key(queue_name)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def ttl_ms(self) -> int:
        return int(self.every * LIVENESS_BEATS * 1000)

    def snapshot(self) -> WorkerBeat:
        return WorkerBeat(
            worker_id=self.worker_id,
            queue_name=self.queue_name,
            started_at=self.started_at,
            beat_at=utcnow(),
            running=self.running(),
            state=self.state,
        )

    async def beat(self) -> None:
        beat = self.snapshot()
        try:
            await self._write(beat)
        except ResponseError as error:
            if not damaged(error):
                raise
            await move_aside(self.redis, self.queue_name, {self._index: "zset"}, self.worker_id)
            await self._write(beat)
        self.beats += 1
        self.written_at = monotonic()

    async def _write(self, beat: WorkerBeat) -> None:
        now_ms = int(beat.beat_at.timestamp() * 1000)
        forget = FORGET_AFTER_SECONDS * 1000
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key, beat.to_json(), px=self.ttl_ms)
            pipe.zadd(self._index, {self.worker_id: now_ms})
            pipe.zremrangebyscore(self._index, "-inf", now_ms - forget)
            # No worker beats from the future: such an entry would be listed as lost for ever.
            pipe.zremrangebyscore(self._index, f"({now_ms + forget}", "+inf")
            await pipe.execute()

    async def start(self, state: str = READY) -> None:
        """Write the first beat now (a Redis that cannot take it fails the startup), then
        beat in the background."""
        self.state = state
        await self.beat()
        await self._ping_within(self.every)
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._beat_forever())

    def stopping(self) -> None:
        self.state = STOPPING
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def stop(self) -> None:
        """Stop beating and leave: the key and the index entry go (a signal said
        "stopping" already; without one, as in a burst, there is no one to tell)."""
        self.state = STOPPING
        if self._task is not None:
            await cancel_and_wait(self._task)
        try:
            await asyncio.wait_for(self._leave(), timeout=max(1.0, self.every))
        except Exception as problem:  # Redis away: the key expires on its own
            log.warning("could not remove this worker's heartbeat: %s", problem or "timeout")

    async def _leave(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key)
            pipe.zrem(self._index, self.worker_id)
            await pipe.execute()

    async def _beat_forever(self) -> None:
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.every)
            self._wake.clear()
            self.ticked_at = monotonic()
            # Each bounded by one interval, so that the loop goes round at least every two.
            await asyncio.gather(self._beat_within(self.every), self._ping_within(self.every))

    async def _beat_within(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.beat(), timeout=seconds)
        except Exception as problem:  # a Redis hiccup must not stop the beat for good
            log.warning("could not write this worker's heartbeat: %s", problem or "timeout")

    async def _ping_within(self, seconds: float) -> None:
        if self.database is None:
            return
        try:
            await asyncio.wait_for(self.database(), timeout=seconds)
        except Exception as problem:
            log.debug("the database did not answer the health probe: %s", problem)
        else:
            self.database_at = monotonic()
