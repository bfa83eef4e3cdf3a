"""The workers of a queue as their heartbeats tell them: who is alive, since when, how busy,
in what state, and who fell silent lately. The format is shared with the writer, each
worker's ``worker.runtime.heartbeats``.

arq keeps one health key per queue, shared by every worker of it: one stuck worker among
three looks healthy, and one stopping deletes the key for all. Here each worker writes its
own key (JSON, expiring after a few missed beats) and its id in an index (a sorted set
scored by the time of its last beat), so a reader lists the workers of a queue in two
round trips (ZRANGE, MGET), O(workers), without a SCAN of the keyspace.

A worker is listed while its key exists: Redis expires it on its own clock after
``LOST_AFTER_BEATS`` missed beats. It is ``late`` once it missed one beat (by the reader's
clock), ``lost`` when its key expired: a worker that stopped beating (stuck, killed) stays
in the index, with the time of its last beat, until an operator dismisses it
(``dismiss_lost``) or it beats again, so that it never vanishes without a word. The
console's pages, ``/api/workers``, ``jobs health`` and ``/metrics`` all tell the workers
through ``Roster.rows``, so they agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from arq.connections import ArqRedis
from redis.exceptions import ResponseError

KEY_PREFIX = "dbjobs:worker:"
INDEX_PREFIX = "dbjobs:workers:"
STARTING, READY, STOPPING = "starting", "ready", "stopping"
WORKER_STATES = (STARTING, READY, STOPPING)
LATE, LOST = "late", "lost"  # told by the readers: a beat missed, or its key expired
LOST_AFTER_BEATS = 3  # beats a worker may miss before its key expires and it counts as lost
DEFAULT_EVERY_SECONDS = 5.0  # the beat interval of a worker that did not say its own
# A beat counts as missed this far past its due time: a loaded worker beats a little late.
LATE_GRACE = 0.5


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
    every_seconds: float = DEFAULT_EVERY_SECONDS  # the worker's beat interval

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
                every_seconds=float(fields.get("every_seconds", DEFAULT_EVERY_SECONDS)),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return None

    def missed_beats(self, now: datetime) -> int:
        """The beats due since this one that did not come (by the reader's clock)."""
        every = self.every_seconds if self.every_seconds > 0 else DEFAULT_EVERY_SECONDS
        overdue = (now - self.beat_at).total_seconds() / every - LATE_GRACE
        return max(0, int(overdue))


@dataclass(frozen=True)
class LostWorker:
    """A worker whose heartbeat stopped without its saying goodbye: stuck or killed."""

    worker_id: str
    last_beat_at: datetime


@dataclass(frozen=True)
class WorkerRow:
    """One worker as every face shows it: ``state`` is what it said of itself (starting,
    ready, stopping) unless it fell behind: ``late`` after one missed beat, ``lost`` after
    ``LOST_AFTER_BEATS``; ``running`` is None for a lost one (its jobs return to the queue
    as their leases lapse)."""

    worker_id: str
    state: str
    running: int | None
    started_at: datetime | None
    beat_at: datetime
    seconds_since_beat: float

    @property
    def healthy(self) -> bool:
        return self.state not in (LATE, LOST)


@dataclass(frozen=True)
class Roster:
    live: list[WorkerBeat]
    lost: list[LostWorker]
    unreadable: int = 0  # entries skipped: not UTF-8, not a beat, or an index not a sorted set

    @property
    def running(self) -> int:
        """Jobs running on the live workers, as their last beats say."""
        return sum(max(worker.running, 0) for worker in self.live)

    def rows(
        self, now: datetime | None = None, running: Mapping[str, int] | None = None
    ) -> list[WorkerRow]:
        """Every worker, live then lost; with ``running`` (jobs by worker id, as a read of
        the queue's head found them), its counts rather than the beats' (a beat is up to
        one interval old), so that a page's worker rows agree with its Running table."""
        now = now or datetime.now(UTC)
        rows = [_live_row(beat, now, running) for beat in self.live]
        rows += [_lost_row(lost, now) for lost in self.lost]
        return rows

    def count(self, state: str, now: datetime | None = None) -> int:
        return sum(row.state == state for row in self.rows(now))


def _live_row(beat: WorkerBeat, now: datetime, running: Mapping[str, int] | None) -> WorkerRow:
    late = beat.missed_beats(now) >= 1
    jobs = beat.running if running is None else running.get(beat.worker_id, 0)
    return WorkerRow(
        worker_id=beat.worker_id,
        state=LATE if late and beat.state != STOPPING else beat.state,
        running=max(jobs, 0),
        started_at=beat.started_at,
        beat_at=beat.beat_at,
        seconds_since_beat=_since(beat.beat_at, now),
    )


def _lost_row(lost: LostWorker, now: datetime) -> WorkerRow:
    return WorkerRow(
        lost.worker_id, LOST, None, None, lost.last_beat_at, _since(lost.last_beat_at, now)
    )


def _since(moment: datetime, now: datetime) -> float:
    return round(max(0.0, (now - moment).total_seconds()), 1)


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


def _by_id(worker: WorkerBeat | LostWorker) -> str:
    return worker.worker_id


async def dismiss_lost(redis: ArqRedis, queue_name: str, worker_id: str) -> bool:
    """Forget a lost worker (an operator saw it): True when it was lost and is forgotten;
    False when it is not listed, or beats (a late worker is not dismissed: it may return)."""
    if await redis.exists(worker_key(queue_name, worker_id)):
        return False
    try:
        return bool(await redis.zrem(index_key(queue_name), worker_id))
    except ResponseError:  # not a sorted set: nothing listed to forget
        return False
