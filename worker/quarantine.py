"""What no worker can serve, set aside: queue entries and keys that would stop a worker.

A queue entry whose id is not text (not UTF-8, or holding a NUL), or whose own keys hold
the wrong kind of value (a hash where arq keeps a job, a try count that is not a number),
would stop the worker that met it, and then every worker after it. Instead the worker
moves it, in one atomic step, from the queue to the queue's quarantine: a Redis list
(``dbjobs:quarantine:<queue>``, newest first, the latest ``QUARANTINE_LIMIT`` kept, so a
flood costs bounded memory) of what it was, why, when and which worker moved it; the
entry's keys are deleted. Only the worker whose ZREM took it records it, so an entry is
quarantined once however many workers meet it, and never tried again.

A key the whole queue shares (the queue itself, arq's abort set, the workers' index, the
history outbox) holding the wrong type is renamed to ``<key>:damaged`` and recorded the
same way, so that the next write starts it afresh.

A job whose id is fine but whose data is not (not JSON, a pickle, the wrong shape, a
function that is not registered) is not quarantined: it fails once and the job history
records why (``worker.runtime.claiming``).

Here are the quarantine's format and its readers; the workers' side, which moves entries
and keys aside and counts them, is ``worker.runtime.quarantining``.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import asdict, dataclass

import orjson
from arq.connections import ArqRedis
from redis.exceptions import ResponseError

QUARANTINE_PREFIX = "dbjobs:quarantine:"
QUARANTINE_LIMIT = 1_000  # records kept, at most 1.6 KB each
DAMAGED_SUFFIX = ":damaged"
SHOWN_CHARS = 200  # of an id or a key, in a record
DETAIL_CHARS = 500  # of why, in a record
BAD_ID, WRONG_TYPE, SHARED_KEY = "bad_id", "wrong_type", "shared_key"
REASONS = (BAD_ID, WRONG_TYPE, SHARED_KEY)


def quarantine_key(queue_name: str) -> str:
    return QUARANTINE_PREFIX + queue_name


def id_problem(raw: bytes) -> str | None:
    """Why a queue entry cannot be a job id (arq's keys and the job history need text);
    None when it can."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return "its id is not UTF-8 text"
    if "\x00" in text:
        return "its id holds a NUL character, which the job history cannot store"
    return None


def damaged(error: BaseException) -> bool:
    """A Redis refusal caused by what a key holds (not by the connection or the server)."""
    message = str(error)
    return isinstance(error, ResponseError) and (
        "WRONGTYPE" in message or "not an integer" in message
    )


def shown(raw: bytes | str) -> str:
    """An id or a key as text, bytes that are not UTF-8 as ``\\xff``, cut short."""
    text = raw if isinstance(raw, str) else raw.decode(errors="backslashreplace")
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


@dataclass(frozen=True)
class Quarantined:
    """One record of the quarantine: an entry or a key set aside, and why."""

    entry: str  # the job id, or the key moved aside (``shown``)
    reason: str  # one of REASONS
    detail: str
    at: str  # ISO 8601, UTC
    worker: str
    entry_hex: str = ""  # the id's bytes exactly, for one that is not UTF-8 text

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> Quarantined:
        with suppress(orjson.JSONDecodeError, TypeError, ValueError):
            fields = orjson.loads(raw)
            return cls(**{name: str(fields.get(name, "")) for name in cls.__dataclass_fields__})
        return cls("?", "?", "a record that is not this worker's JSON", "", "")


@dataclass(frozen=True)
class QuarantineView:
    total: int  # records kept (at most QUARANTINE_LIMIT)
    latest: list[Quarantined]


async def read_quarantine(redis: ArqRedis, queue_name: str, limit: int = 10) -> QuarantineView:
    """How many records the quarantine keeps, and the latest ``limit`` (at least one) of
    them. A quarantine that is not a list reads as empty: a worker moves it aside."""
    key = quarantine_key(queue_name)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.llen(key)
        pipe.lrange(key, 0, min(max(limit, 1), QUARANTINE_LIMIT) - 1)
        total, latest = await pipe.execute(raise_on_error=False)
    if isinstance(total, Exception) or isinstance(latest, Exception):
        return QuarantineView(0, [])
    return QuarantineView(int(total), [Quarantined.from_json(raw) for raw in latest])


async def clear_quarantine(redis: ArqRedis, queue_name: str) -> int:
    """Forget every record of the quarantine; how many there were."""
    key = quarantine_key(queue_name)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.llen(key)
        pipe.delete(key, key + DAMAGED_SUFFIX)
        total, _ = await pipe.execute(raise_on_error=False)
    return total if isinstance(total, int) else 0


__all__ = [
    "QUARANTINE_LIMIT",
    "QuarantineView",
    "Quarantined",
    "clear_quarantine",
    "damaged",
    "id_problem",
    "quarantine_key",
    "read_quarantine",
]
