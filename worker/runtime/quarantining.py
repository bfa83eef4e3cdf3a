"""How a worker sets aside what no worker can serve (``worker.quarantine`` says what and
why): a queue entry moved, in one atomic step, from the queue to the quarantine, its keys
deleted; a key the whole queue shares renamed to ``<key>:damaged``. Each is recorded in
the quarantine and counted in ``dbjobs_quarantined_total``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

from worker.quarantine import (
    DAMAGED_SUFFIX,
    DETAIL_CHARS,
    QUARANTINE_LIMIT,
    SHARED_KEY,
    Quarantined,
    id_problem,
    quarantine_key,
    shown,
)
from worker.runtime.prometheus import QUARANTINED

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
    QUARANTINED.labels(reason).inc(amount)


async def _push(redis: ArqRedis, queue_name: str, records: Sequence[Quarantined]) -> None:
    key = quarantine_key(queue_name)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lpush(key, *(record.to_json() for record in records))
        pipe.ltrim(key, 0, QUARANTINE_LIMIT - 1)
        await pipe.execute()
