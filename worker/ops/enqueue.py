"""Enqueue many jobs at once: what arq's ``enqueue_job`` does, one round trip per batch.

``enqueue_job`` costs several round trips per job (WATCH, EXISTS, MULTI/EXEC), about 5,000
jobs/s here. ``enqueue_many`` writes the very same keys with a Lua script that runs once
per batch: per job, atomically, it skips an id already queued or finished (its job or
result key exists), else stores the serialized job with arq's expiry and adds the id to
the queue with the enqueue time as score. Workers cannot tell the two apart.

With ``ReplicaAck`` (``JOBS_ENQUEUE_REPLICAS``) each batch is followed, on the same
connection and in the same round trip, by Redis's ``WAIT``: the call returns only once
that many replicas hold the jobs, so a failover to one of them loses none; else it raises
``NotReplicated``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

from worker.lanes import DOORBELL_TOKENS, Lane, doorbell_key, lane_queue, lane_queues
from worker.ops.actions import NotReplicated
from worker.registry import JOBS, lane_of
from worker.serialization import serialize, serialize_minted

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

    from worker.settings import Settings

# A child job's keyword argument naming the submission it belongs to: the job history
# records it as the job's parent, and the payload never sees it.
PARENT_KWARG = "_parent_job_id"
# A job's keyword argument giving the version of its payload's schema (``Job.version``):
# the worker runs it at its own version, or leaves it for a worker that knows it.
VERSION_KWARG = "_payload_version"
MAX_JOBS_PER_CALL = 1000
MAX_BYTES_PER_CALL = 4 * 1024 * 1024
REPLICATION_MARK = ":replicated"  # after the queue's name: the last enqueue WAITed for
REPLICATION_MARK_MS = 60_000

# KEYS: queue, doorbell, then (job key, result key) per job. ARGV: score, expiry ms,
# doorbell tokens, then (job id, serialized job) per job. Returns 1 per job enqueued, 0 per
# job skipped; rings the doorbell (worker.runtime.polling) once per call that enqueued.
_ENQUEUE_SCRIPT = """
local added, any = {}, false
for i = 1, (#KEYS - 2) / 2 do
  if redis.call('exists', KEYS[2 * i + 1], KEYS[2 * i + 2]) == 0 then
    redis.call('psetex', KEYS[2 * i + 1], ARGV[2], ARGV[2 * i + 3])
    redis.call('zadd', KEYS[1], ARGV[1], ARGV[2 * i + 2])
    added[i] = 1
    any = true
  else
    added[i] = 0
  end
end
if any then
  redis.call('lpush', KEYS[2], 1)
  redis.call('ltrim', KEYS[2], 0, ARGV[3] - 1)
end
return added
"""


@dataclass(frozen=True)
class ReplicaAck:
    """How many replicas must hold an enqueued job before the producer is told it is."""

    replicas: int
    timeout_ms: int

    @classmethod
    def of(cls, settings: Settings) -> ReplicaAck | None:
        if settings.enqueue_replicas == 0:
            return None
        return cls(settings.enqueue_replicas, round(settings.enqueue_replica_timeout * 1000))


async def enqueue_many(
    pool: ArqRedis,
    function: str,
    payloads: Iterable[dict[str, Any]],
    job_ids: Sequence[str | None] | None = None,
    *,
    queue_name: str | None = None,
    lane: Lane | None = None,
    parent_id: str | None = None,
    replicas: ReplicaAck | None = None,
) -> list[str]:
    """Enqueue ``function(payload)`` for each payload; the ids of the jobs actually queued.

    ``job_ids`` (one per payload, ``None`` for a random one) deduplicate like ``_job_id``:
    an id already queued, running or holding a result is skipped, as are repeats within
    the call. ``payloads`` are serialized as they are enqueued: an iterator of them is
    drawn one batch of jobs at a time. They wait in ``lane``, by default their job's
    (``worker.lanes``), of the queue ``queue_name`` (by default the pool's).
    """
    if job_ids is not None and isinstance(payloads, Sized) and len(job_ids) != len(payloads):
        raise ValueError(f"{len(job_ids)} job ids for {len(payloads)} payloads")
    base = queue_name or pool.default_queue_name
    queue = lane_queue(base, lane or lane_of(function))
    script = pool.register_script(_ENQUEUE_SCRIPT)
    enqueued: list[str] = []
    kwargs: dict[str, Any] = {PARENT_KWARG: parent_id} if parent_id else {}
    kwargs.update(version_kwargs(function))
    for batch in _batches(function, payloads, job_ids, kwargs):
        keys: list[str] = [queue, doorbell_key(base)]
        args: list[str | bytes | int] = [timestamp_ms(), pool.expires_extra_ms, DOORBELL_TOKENS]
        for job_id, job in batch:
            keys += (job_key_prefix + job_id, result_key_prefix + job_id)
            args += (job_id, job)
        flags = await _run(pool, script, keys, args, replicas, [job_id for job_id, _ in batch])
        enqueued += (job_id for (job_id, _), flag in zip(batch, flags, strict=True) if flag)
    return enqueued


async def _run(
    pool: ArqRedis,
    script: AsyncScript,
    keys: list[str],
    args: list[str | bytes | int],
    replicas: ReplicaAck | None,
    job_ids: list[str],
) -> list[int]:
    """The script's flags; with ``replicas``, once they acknowledged every write so far.

    WAIT waits for the last write of its own connection, hence one pipeline, and a mark
    written last: a batch already queued (by a try that was not acknowledged) writes
    nothing, and replication is in order, so the mark covers it too.
    """
    if replicas is None:
        flags: list[int] = await script(keys=keys, args=args)
        return flags
    async with pool.pipeline(transaction=False) as pipe:
        await script(keys=keys, args=args, client=pipe)
        pipe.set(keys[0] + REPLICATION_MARK, timestamp_ms(), px=REPLICATION_MARK_MS)
        pipe.execute_command("WAIT", replicas.replicas, replicas.timeout_ms)
        flags, _, acknowledged = await pipe.execute()
    if acknowledged < replicas.replicas:
        raise NotReplicated(replicas, acknowledged, job_ids)
    return list(flags)


def version_kwargs(function: str) -> dict[str, Any]:
    """What tells a worker the version of ``function``'s payload, as the registry declares
    it: nothing at version 1, which is what a job without one means, and all that a worker
    from before versions can read (it would refuse the keyword as a payload field)."""
    job = JOBS.get(function)
    return {VERSION_KWARG: job.version} if job is not None and job.version > 1 else {}


def _batches(
    function: str,
    payloads: Iterable[dict[str, Any]],
    job_ids: Sequence[str | None] | None,
    kwargs: dict[str, Any],
) -> Iterator[list[tuple[str, bytes]]]:
    """Serialized jobs in batches bounded in count and bytes (one script call each)."""
    batch: list[tuple[str, bytes]] = []
    size = 0
    ids: Iterable[str | None] = repeat(None) if job_ids is None else job_ids
    for payload, given in zip(payloads, ids, strict=job_ids is not None):
        serializer = serialize if given else serialize_minted  # (worker.serialization)
        job = serialize_job(
            function, (payload,), kwargs, None, timestamp_ms(), serializer=serializer
        )
        batch.append((given or os.urandom(16).hex(), job))  # uuid4().hex's format, faster
        size += len(job)
        if len(batch) >= MAX_JOBS_PER_CALL or size >= MAX_BYTES_PER_CALL:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


# KEYS: job key, in-progress key, then every lane's queue; ARGV: job id. 1 when the job
# was taken off its lane, 0 when it was in none or a worker has claimed it.
_TAKE_OFF_SCRIPT = """
if redis.call('exists', KEYS[2]) == 1 then
  return 0
end
for i = 3, #KEYS do
  if redis.call('zrem', KEYS[i], ARGV[1]) == 1 then
    redis.call('del', KEYS[1])
    return 1
  end
end
return 0
"""


async def take_off_queue(pool: ArqRedis, job_id: str, *, queue_name: str | None = None) -> bool:
    """Remove a job that is waiting (queued, or deferred until its next try), atomically, so
    that no worker can claim it halfway: False when a worker already has it, or it is gone."""
    queue = queue_name or pool.default_queue_name
    script = pool.register_script(_TAKE_OFF_SCRIPT)
    keys = [job_key_prefix + job_id, in_progress_key_prefix + job_id, *lane_queues(queue)]
    return bool(await script(keys=keys, args=[job_id]))
