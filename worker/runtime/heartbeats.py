"""Each worker's own heartbeat in Redis, written every few seconds: its key (the beat, as
JSON, expiring after ``LOST_AFTER_BEATS`` missed beats) and its id in the queue's index of
workers, kept ``FORGET_AFTER_SECONDS`` after its last beat (or until an operator dismisses
it). The format, and how readers
list the workers, are ``worker.ops.workers``'s.

A beat is one script call, the most an idle worker sends (README, "Lanes, caps and
pauses"): its key and its place in the index together; the index is pruned of the
forgotten every ``PRUNE_EVERY_BEATS`` beats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from time import monotonic

from arq.connections import ArqRedis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from domain.db import utcnow
from worker.ops.workers import (
    LOST_AFTER_BEATS,
    READY,
    STARTING,
    STOPPING,
    WorkerBeat,
    index_key,
    worker_key,
)
from worker.quarantine import damaged
from worker.runtime.quarantining import move_aside
from worker.runtime.tasks import cancel_and_wait

log = logging.getLogger("worker.heartbeats")

# A lost worker stays listed, in red, until an operator dismisses it; after a day without
# a beat, it is forgotten anyway (the index stays small on a queue whose workers churn).
FORGET_AFTER_SECONDS = 86_400
PRUNE_EVERY_BEATS = 12  # a minute at the default beat

# KEYS: the worker's key, the index. ARGV: the beat, its life in ms, the worker id, now
# (ms), how long the index keeps a silent worker (ms), whether to prune it (1 or 0).
_BEAT = """
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('zadd', KEYS[2], ARGV[4], ARGV[3])
if ARGV[6] == '1' then
  local now, forget = tonumber(ARGV[4]), tonumber(ARGV[5])
  redis.call('zremrangebyscore', KEYS[2], '-inf', now - forget)
  -- No worker beats from the future: such an entry would be listed as lost for ever.
  redis.call('zremrangebyscore', KEYS[2], '(' .. (now + forget), '+inf')
end
return 1
"""


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
        self._script: AsyncScript | None = None  # registered at the first beat
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def ttl_ms(self) -> int:
        return int(self.every * LOST_AFTER_BEATS * 1000)

    def snapshot(self) -> WorkerBeat:
        return WorkerBeat(
            worker_id=self.worker_id,
            queue_name=self.queue_name,
            started_at=self.started_at,
            beat_at=utcnow(),
            running=self.running(),
            state=self.state,
            every_seconds=self.every,
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
        prune = int(self.beats % PRUNE_EVERY_BEATS == 0)
        args: list[bytes | str | int] = [beat.to_json(), self.ttl_ms, self.worker_id, now_ms]
        args += [FORGET_AFTER_SECONDS * 1000, prune]
        if self._script is None:
            self._script = self.redis.register_script(_BEAT)
        await self._script(keys=[self._key, self._index], args=args)

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
