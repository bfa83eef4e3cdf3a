"""A claimed job whose data arq did not find: taken off the queue where its data is indeed
gone, and no failed result written, so that its producer can still enqueue it.

arq fails such a job as "job expired": it deletes the queue entry and stores a failed
result, and an enqueue under the job's id then skips it (``worker.ops.enqueue``: a job
with a result is finished). Its data can be missing without having expired. In a Sentinel
split brain (a primary the sentinels replaced, slow rather than dead, still a primary to
the clients connected to it until they convert it, 8 to 10 s later) one worker's pool
holds connections to both primaries: a job claimed on one can be read on the other, which
never had it, and the failed result lands on the primary that stays. The producer, whose
``WAIT`` could not be answered meanwhile, enqueues the job again there, under its id, and
that enqueue was skipped: acknowledged, never run. A retry's ``ZINCRBY`` on a primary where
another delivery had already finished the job also queues its id again without data.

Here the entry is removed only if the data is missing on the server that removes it,
atomically; if it is there (read elsewhere), the entry stays and the claim lapses, and the
job is claimed again within one lease.
"""

from __future__ import annotations

import logging

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, retry_key_prefix

from worker.serialization import JobError, deserialize

log = logging.getLogger("worker.claiming")
# What arq's run_job stores for a job whose data its read did not find.
_NO_DATA_FUNCTION, _NO_DATA_ERROR = "<unknown>", ("JobExecutionFailed", "job expired")

# KEYS: job key, in-progress key, retry key, queue, abort requests. ARGV: job id.
# 1 when the data is not here and the entry was removed; 0 when the data is here.
_DROP_IF_GONE = """
if redis.call('exists', KEYS[1]) == 1 then
  return 0
end
redis.call('del', KEYS[2], KEYS[3])
redis.call('zrem', KEYS[4], ARGV[1])
redis.call('zrem', KEYS[5], ARGV[1])
return 1
"""


def without_data(result_data: bytes | None) -> bool:
    """Whether arq failed the job because its read found no data for it."""
    try:
        result = deserialize(result_data or b"")
    except ValueError:
        return False
    error = result.get("r")
    return (
        result.get("f") == _NO_DATA_FUNCTION
        and isinstance(error, JobError)
        and (error.type_name, error.message) == _NO_DATA_ERROR
    )


async def drop_if_gone(redis: ArqRedis, queue: str, job_id: str) -> bool:
    """Take ``job_id`` off ``queue`` if its data is not on the server, writing no result;
    True when it was taken off, False when its data is there and the entry was left."""
    keys = [
        job_key_prefix + job_id,
        in_progress_key_prefix + job_id,
        retry_key_prefix + job_id,
        queue,
        abort_jobs_ss,
    ]
    dropped = bool(await redis.register_script(_DROP_IF_GONE)(keys=keys, args=[job_id]))
    if dropped:
        log.warning(
            "job %s: no data for it on Redis; taken off the queue, no result kept, so "
            "enqueueing it again under its id runs it",
            job_id,
        )
    else:
        log.warning(
            "job %s: its data was not where it was read (two Redis primaries at once?); "
            "left queued, claimed again once its lease lapses",
            job_id,
        )
    return dropped
