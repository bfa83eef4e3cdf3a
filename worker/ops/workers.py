"""The workers of a queue as their heartbeats tell them: who is alive, since when, how busy,
in what state, and who fell silent lately. The format is shared with the writer, each
worker's ``worker.runtime.heartbeats``.

arq keeps one health key per queue, shared by every worker of it: one stuck worker among
three looks healthy, and one stopping deletes the key for all. Here each worker writes its
own key (JSON, expiring after a few missed beats) and its id in an index (a sorted set
scored by the time of its last beat), so a reader lists the workers of a queue in two
round trips (ZRANGE, MGET), O(workers), without a SCAN of the keyspace.

A worker is alive while its key exists: Redis expires it on its own clock, so no clock
of the readers or the workers decides. A worker that stopped beating (stuck, killed) stays
in the index, with the time of its last beat, for a few minutes more: a reader can tell
"gone silent 20 s ago" from "never was".
"""

from __future__ import annotations

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

    @property
    def running(self) -> int:
        """Jobs running on the live workers, as their last beats say."""
        return sum(max(worker.running, 0) for worker in self.live)


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
