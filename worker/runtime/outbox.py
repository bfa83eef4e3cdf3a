"""What the job history cannot write while PostgreSQL is away, Redis keeps for it.

- Each retry also leaves a short-lived note in Redis (``retry_note_key``): the try, its
  error and when the next one is due, so that ``dbjobs status`` and ``--wait`` can say why
  a job is waiting even when the database is what failed (``worker.ops.job_notes`` reads
  it).
- A final failure that cannot be written goes to an outbox list in Redis; every worker
  drains the outbox into PostgreSQL once it answers again, so ``dbjobs failed`` lists it.

Each step on an entry is one Redis command or one MULTI, so a worker SIGKILLed at any
point loses none: an entry is written in one MULTI, and the drain reads the oldest without
taking it, writes it to the history, and only then removes it (``LREM``). A worker killed
in between leaves it for the next drain, which writes it again: the history's upsert makes
that second write change nothing.

A worker drains at its next turn once it wrote an entry itself, and on every turn after
while entries remain; otherwise it looks for other workers' entries once a
``LOOK_EVERY_SECONDS`` (one command), so that an idle worker's drainer costs next to
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import asdict
from datetime import datetime
from time import monotonic
from typing import Any, cast

import orjson
from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from domain.repositories import JobStamp
from worker.bootstrap import Services
from worker.ops.job_notes import retry_note_key
from worker.quarantine import damaged
from worker.runtime.quarantining import move_aside
from worker.runtime.retry import is_transient
from worker.runtime.tasks import Periodic

log = logging.getLogger("worker.history")

OUTBOX_KEY = "dbjobs:history:outbox"
DEAD_LETTERS_KEY = "dbjobs:history:outbox:refused"
OUTBOX_LIMIT = 100_000  # entries kept while the database is away; the oldest go first
DRAIN_EVERY_SECONDS = 5.0
# One worker drains at a time: the others would write the same oldest entry again, for
# nothing. A turn ends when its drain does, or lapses if its worker dies.
DRAIN_TURN_KEY = "dbjobs:history:outbox:drainer"
DRAIN_TURN_MS = 20_000
LOOK_EVERY_SECONDS = 60.0  # for entries other workers wrote


class _Deferred:
    """How many failures this process put in the outbox: its drainers drain after one."""

    count = 0


async def note_retry(
    redis: ArqRedis, stamp: JobStamp, error: tuple[str, str], retry_at: datetime, ttl: int
) -> None:
    note = {
        "tries": stamp.tries,
        "error_type": error[0],
        "error_message": error[1],
        "retry_at": retry_at.isoformat(),
        "worker": stamp.worker,
    }
    await redis.set(retry_note_key(stamp.job_id), orjson.dumps(note), ex=max(ttl, 1))


async def defer_failure(redis: ArqRedis, stamp: JobStamp, fields: dict[str, Any]) -> None:
    """Keep a final failure for the history until the database can take it."""
    entry = {"stamp": {**asdict(stamp), "started_at": stamp.started_at.isoformat()}, **fields}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lpush(OUTBOX_KEY, orjson.dumps(entry))
        pipe.ltrim(OUTBOX_KEY, 0, OUTBOX_LIMIT - 1)
        await pipe.execute()
    _Deferred.count += 1


async def drain_outbox(services: Services) -> int:
    """Write waiting failures to the history, oldest first, one at a time; how many were
    written. An entry the history refuses for good is set aside (``DEAD_LETTERS_KEY``) so
    that it cannot hold the others back; one that fails for now goes back, and waits. An
    outbox written over by another program (not a list) is moved aside."""
    try:
        return await _drain(services)
    except ResponseError as error:
        if not damaged(error):
            raise
        keys = {OUTBOX_KEY: "list", DEAD_LETTERS_KEY: "list"}
        await move_aside(services.redis, services.settings.queue_name, keys, services.worker_id)
        return 0


async def _drain(services: Services) -> int:
    written = 0
    while (raw := await _oldest(services.redis)) is not None:
        try:
            entry = orjson.loads(raw)
            fields = {key: value for key, value in entry.items() if key != "stamp"}
            stamp = _stamp(entry["stamp"])
        except (ValueError, KeyError, TypeError, AttributeError) as problem:  # not ours
            await _set_aside(services.redis, raw, problem)
            continue
        try:
            async with services.unit_of_work() as uow:
                await uow.jobs.record_failure(stamp, **fields)
                await uow.commit()
        except Exception as problem:
            if is_transient(problem):
                raise  # it stays the oldest, for the next drain
            await _set_aside(services.redis, raw, problem)
            continue
        await _remove(services.redis, raw)
        written += 1
    return written


async def _oldest(redis: ArqRedis) -> bytes | None:
    """The oldest entry, left in the outbox until the history has it."""
    # redis-py types its commands for both its clients at once.
    return await cast(Awaitable[bytes | None], redis.lindex(OUTBOX_KEY, -1))


async def _remove(redis: ArqRedis, raw: bytes) -> None:
    """Remove one copy of ``raw``, searched from the oldest end: another worker may have
    written and removed it meanwhile, and then this removes nothing."""
    await cast(Awaitable[int], redis.lrem(OUTBOX_KEY, -1, raw))  # type: ignore[arg-type]  # bytes, as they are


async def _set_aside(redis: ArqRedis, raw: bytes, problem: BaseException) -> None:
    log.warning("a failure kept for the history cannot be written, set aside: %s", problem)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lrem(OUTBOX_KEY, -1, raw)  # type: ignore[arg-type]  # bytes, sent as they are
        pipe.lpush(DEAD_LETTERS_KEY, raw)
        pipe.ltrim(DEAD_LETTERS_KEY, 0, OUTBOX_LIMIT - 1)
        await pipe.execute()


def _stamp(fields: dict[str, Any]) -> JobStamp:
    enqueued = fields.get("enqueued_at")
    return JobStamp(
        **{
            **fields,
            "started_at": datetime.fromisoformat(fields["started_at"]),
            "enqueued_at": datetime.fromisoformat(enqueued) if enqueued else None,
        }
    )


class OutboxDrainer(Periodic):
    """A worker's background task that drains the outbox: every few seconds while it holds
    entries this worker knows of, and a look for others' every ``look_every`` seconds."""

    waiting = "the history outbox waits"  # the database (or Redis) is still away

    def __init__(
        self,
        services: Services,
        every: float = DRAIN_EVERY_SECONDS,
        look_every: float = LOOK_EVERY_SECONDS,
    ) -> None:
        super().__init__(every)
        self.services = services
        self.look_every = look_every
        self._seen = _Deferred.count  # the writes of this process already drained
        self._pending = False  # entries known to wait (a drain that failed, or no turn)
        self._looked_at = float("-inf")  # monotonic: a worker starting looks at once

    async def tick(self) -> None:
        if not await self._worth_a_drain():
            return
        self._seen, self._pending = _Deferred.count, True
        if await self._drain_in_turn():
            self._pending = False  # a failed drain raised: the next turn drains again

    async def _worth_a_drain(self) -> bool:
        """Entries this worker knows of, or found by its periodic look."""
        if self._pending or self._seen != _Deferred.count:
            return True
        now = monotonic()
        if now - self._looked_at < self.look_every:
            return False
        self._looked_at = now
        return bool(await self.services.redis.exists(OUTBOX_KEY))

    async def _drain_in_turn(self) -> bool:
        """Drain unless another worker is at it; whether this one drained."""
        redis, me = self.services.redis, self.services.worker_id
        if not await redis.set(DRAIN_TURN_KEY, me, nx=True, px=DRAIN_TURN_MS):
            return False
        try:
            if written := await drain_outbox(self.services):
                log.info("wrote %d failure(s) kept while the database was away", written)
        finally:
            if await redis.get(DRAIN_TURN_KEY) == me.encode():
                await redis.delete(DRAIN_TURN_KEY)
        return True
