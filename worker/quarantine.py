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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from redis.exceptions import ResponseError

QUARANTINE_PREFIX = "dbjobs:quarantine:"
QUARANTINE_LIMIT = 1_000  # records kept, at most 1.6 KB each
DAMAGED_SUFFIX = ":damaged"
SHOWN_CHARS = 200  # of an id or a key, in a record
DETAIL_CHARS = 500  # of why, in a record
BAD_ID, WRONG_TYPE, SHARED_KEY = "bad_id", "wrong_type", "shared_key"
REASONS = (BAD_ID, WRONG_TYPE, SHARED_KEY)

# KEYS[1]: the queue (or another sorted set of ids), KEYS[2]: its quarantine, KEYS[3]:
# where a quarantine that is not a list goes, KEYS[4..]: the entry's own keys. ARGV[1]: the
# entry, ARGV[2]: its record, ARGV[3]: records kept. 1 when the entry was moved; 0 when it
# had left already.
_QUARANTINE = """
if redis.call('zrem', KEYS[1], ARGV[1]) == 0 then
  return 0
end
for i = 4, #KEYS do
  redis.call('del', KEYS[i])
end
local kind = redis.call('type', KEYS[2]).ok
if kind ~= 'list' and kind ~= 'none' then
  redis.call('rename', KEYS[2], KEYS[3])
end
redis.call('lpush', KEYS[2], ARGV[2])
redis.call('ltrim', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
"""

# KEYS: pairs of a key and where it goes when it holds the wrong type; ARGV: the type each
# should hold. Returns key, type found... for each key moved.
_MOVE_ASIDE = """
local moved = {}
for i = 1, #ARGV do
  local key = KEYS[2 * i - 1]
  local kind = redis.call('type', key).ok
  if kind ~= 'none' and kind ~= ARGV[i] then
    redis.call('rename', key, KEYS[2 * i])
    moved[#moved + 1] = key
    moved[#moved + 1] = kind
  end
end
return moved
"""


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


def _record(entry: bytes | str, reason: str, detail: str, worker: str) -> Quarantined:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    exact = "" if isinstance(entry, str) or id_problem(entry) is None else entry[:100].hex()
    return Quarantined(shown(entry), reason, detail[:DETAIL_CHARS], at, worker[:200], exact)


async def quarantine_entry(
    redis: ArqRedis,
    queue_name: str,
    entry: bytes,
    reason: str,
    detail: str,
    worker: str,
    *,
    source: str | None = None,
) -> bool:
    """Move ``entry`` from the queue (or the sorted set ``source``) to the queue's quarantine
    and delete its keys; False when it had left already (another worker moved it, or it ran).
    """
    key = quarantine_key(queue_name)
    own = [prefix.encode() + entry for prefix in _JOB_KEY_PREFIXES]
    record = _record(entry, reason, detail, worker).to_json()
    keys: list[str | bytes] = [source or queue_name, key, key + DAMAGED_SUFFIX, *own]
    script = redis.register_script(_QUARANTINE)
    moved = await script(keys=keys, args=[entry, record, QUARANTINE_LIMIT])
    if moved:
        _count(reason)
    return bool(moved)


_JOB_KEY_PREFIXES = (job_key_prefix, retry_key_prefix, in_progress_key_prefix)


async def describe_job_keys(redis: ArqRedis, job_id: str) -> str | None:
    """What is wrong with the keys arq keeps for ``job_id``; None when nothing is."""
    keys = [prefix + job_id for prefix in _JOB_KEY_PREFIXES]
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.type(key)
        pipe.get(retry_key_prefix + job_id)
        *kinds, tries = await pipe.execute(raise_on_error=False)
    problems = [
        f"{shown(key)} holds a {_text(kind)}, not a string"
        for key, kind in zip(keys, kinds, strict=True)
        if _text(kind) not in ("string", "none")
    ]
    if isinstance(tries, bytes) and not tries.strip().lstrip(b"-").isdigit():
        problems.append(f"{shown(keys[1])} holds {shown(tries)!r}, not a count of tries")
    return "; ".join(problems) or None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def move_aside(
    redis: ArqRedis, queue_name: str, expected: Mapping[str, str], worker: str
) -> list[str]:
    """Rename each of ``expected`` (key: the Redis type it must hold) that holds another type
    to ``<key>:damaged``, and record it in the quarantine of ``queue_name``; the keys moved.
    The quarantine itself is checked first, so that it can take the records."""
    expected = {quarantine_key(queue_name): "list", **expected}
    keys = [name for key in expected for name in (key, key + DAMAGED_SUFFIX)]
    reply = await redis.register_script(_MOVE_ASIDE)(keys=keys, args=list(expected.values()))
    moved: list[str] = []
    records: list[Quarantined] = []
    for key, kind in zip(reply[::2], reply[1::2], strict=True):
        name, found = _text(key), _text(kind)
        detail = (
            f"it held a {found}, not a {expected[name]}: moved to {name}{DAMAGED_SUFFIX}, "
            "and started afresh"
        )
        records.append(_record(name, SHARED_KEY, detail, worker))
        moved.append(name)
    if records:
        await _push(redis, queue_name, records)
        _count(SHARED_KEY, len(records))
    return moved


def _count(reason: str, amount: int = 1) -> None:
    # Imported here: readers (the CLI, the console) do without prometheus-client's 60 ms.
    from worker.runtime.prometheus import QUARANTINED

    QUARANTINED.labels(reason).inc(amount)


async def _push(redis: ArqRedis, queue_name: str, records: Sequence[Quarantined]) -> None:
    key = quarantine_key(queue_name)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lpush(key, *(record.to_json() for record in records))
        pipe.ltrim(key, 0, QUARANTINE_LIMIT - 1)
        await pipe.execute()


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
    "describe_job_keys",
    "id_problem",
    "move_aside",
    "quarantine_entry",
    "quarantine_key",
    "read_quarantine",
]
