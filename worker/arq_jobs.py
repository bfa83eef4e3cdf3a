"""arq's ``Job`` as the CLI, the console and the demo read it: looked for in every lane
(``worker.lanes``), and data arq cannot read refused as ``UnreadableData``, naming the key,
never a crash of whoever asked.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from worker.serialization import deserialize
from worker.text import first_line

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from arq.jobs import Job, JobResult


class UnreadableData(ValueError):
    """Data under a job's key that arq cannot read as JSON: a pickle, another program's, or
    a damaged key."""

    def __init__(self, job_id: str, problem: Exception, *, result: bool) -> None:
        from arq.constants import job_key_prefix, result_key_prefix

        self.job_id = job_id
        key, what = (result_key_prefix, "job result") if result else (job_key_prefix, "job")
        cause = problem.__cause__
        why = (
            f"no {cause} field"
            if isinstance(cause, KeyError)
            else first_line(cause or problem, 300)
        )
        super().__init__(
            f"job {job_id}: Redis holds data under {key}{job_id} that is not a JSON {what} "
            f"({why}); another program, or a pickle-based arq, may share this Redis database"
        )


def decoded_result(job_id: str, raw: bytes) -> JobResult:
    """A result read from Redis in bulk, decoded as ``Job.result_info`` decodes it."""
    from arq.jobs import DeserializationError, deserialize_result

    try:
        return deserialize_result(raw, deserializer=deserialize)
    except DeserializationError as problem:
        raise UnreadableData(job_id, problem, result=True) from None


def readable_job(job_id: str, queue: ArqRedis, queue_name: str) -> Job:
    """The job as arq reads it, except that unreadable data in Redis (not JSON, or a key of
    another type) raises UnreadableData."""
    return _checked_job_class()(job_id, queue, _queue_name=queue_name, _deserializer=deserialize)


@functools.cache
def _checked_job_class() -> type[Job]:
    """arq's ``Job``, whose unreadable keys in Redis become a refusal naming them.

    Built on first use: arq is not imported while the CLI starts.
    """
    from arq.constants import in_progress_key_prefix, result_key_prefix
    from arq.jobs import DeserializationError, Job, JobDef, JobStatus
    from arq.utils import timestamp_ms
    from redis.exceptions import ResponseError

    from worker.lanes import lane_queues
    from worker.quarantine import damaged

    class CheckedJob(Job):
        __slots__ = ()

        async def status(self) -> JobStatus:
            """arq's status, the job looked for in every lane (``worker.lanes``)."""
            async with self._redis.pipeline(transaction=True) as tr:
                tr.exists(result_key_prefix + self.job_id)
                tr.exists(in_progress_key_prefix + self.job_id)
                for queue in lane_queues(self._queue_name):
                    tr.zscore(queue, self.job_id)
                complete, in_progress, *scores = await tr.execute()
            score = next((score for score in scores if score), None)
            if complete:
                return JobStatus.complete
            if in_progress:
                return JobStatus.in_progress
            if score:
                return JobStatus.deferred if score > timestamp_ms() else JobStatus.queued
            return JobStatus.not_found

        async def result(
            self,
            timeout: float | None = None,  # noqa: ASYNC109 (arq's signature)
            *,
            poll_delay: float = 0.5,
            pole_delay: float | None = None,
        ) -> Any:
            """arq's wait for the result, in the lane the job waits in (arq looks only in
            the queue it was given, and gives up on a job it does not find there)."""
            async with self._redis.pipeline(transaction=False) as pipe:
                for queue in lane_queues(self._queue_name):
                    pipe.zscore(queue, self.job_id)
                scores = await pipe.execute()
            lanes = lane_queues(self._queue_name)
            found = next((q for q, score in zip(lanes, scores, strict=True) if score), None)
            if found is None or found == self._queue_name:
                return await super().result(timeout, poll_delay=poll_delay)
            in_lane = Job(self.job_id, self._redis, found, self._deserializer)
            return await in_lane.result(timeout, poll_delay=poll_delay)

        async def result_info(self) -> JobResult | None:
            try:
                return await super().result_info()
            except (DeserializationError, ResponseError) as problem:
                raise _unreadable(self.job_id, problem, result=True) from None

        async def info(self) -> JobDef | None:
            # arq's info() reads the result through result_info() above, then the job.
            try:
                return await super().info()
            except (DeserializationError, ResponseError) as problem:
                raise _unreadable(self.job_id, problem, result=False) from None

    def _unreadable(job_id: str, problem: Exception, *, result: bool) -> Exception:
        """Data arq cannot decode, or a key of another type: a refusal naming the key."""
        if isinstance(problem, ResponseError) and not damaged(problem):
            return problem  # the server's own refusal (permissions, memory): not the data's
        return UnreadableData(job_id, problem, result=result)

    return CheckedJob
