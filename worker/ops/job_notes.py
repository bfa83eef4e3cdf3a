"""What we keep in Redis about a job beside arq's own keys: the worker's note on a try it
will retry (written by ``worker.runtime.outbox.note_retry``) and a submission's marker, the
number of jobs it became (written by ``worker.ops.submissions.mark_submission``). Readers
take only a JSON object of ours: any other value under the key is as good as none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a read command that never reads a note loads neither arq nor redis
    from arq.connections import ArqRedis

SUBMISSION_PREFIX = "dbjobs:submission:"
RETRY_NOTE_PREFIX = "dbjobs:retrying:"


def retry_note_key(job_id: str) -> str:
    return RETRY_NOTE_PREFIX + job_id


async def read_retry_note(redis: ArqRedis, job_id: str) -> dict[str, Any] | None:
    """The worker's note on a job's last try; None when there is none, or none of ours."""
    return await _json_object(redis, retry_note_key(job_id))


async def read_submission_marker(redis: ArqRedis, parent_id: str) -> dict[str, Any] | None:
    """A submission's marker; None when there is nothing, or nothing of ours."""
    marker = await _json_object(redis, SUBMISSION_PREFIX + parent_id)
    return marker if marker is not None and isinstance(marker.get("jobs", 0), int) else None


async def _json_object(redis: ArqRedis, key: str) -> dict[str, Any] | None:
    """The JSON object ``key`` holds; None when it holds nothing, or not one (another type
    of key, not JSON, JSON of another shape)."""
    from contextlib import suppress

    import orjson
    from redis.exceptions import ResponseError

    with suppress(ResponseError, orjson.JSONDecodeError):
        raw = await redis.get(key)
        found = orjson.loads(raw) if raw is not None else None
        return found if isinstance(found, dict) else None
    return None
