"""arq's ``Job`` for reading a job's keys, where data arq cannot read (a pickle, another
program's, a key of another type) is a refusal naming the key
(``worker.status.UnreadableData``), not a crash."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from arq.jobs import Job, JobResult


def readable_job(job_id: str, queue: ArqRedis, queue_name: str) -> Job:
    """The job as arq reads it, except that unreadable data in Redis raises UnreadableData."""
    from worker.serialization import deserialize

    return _checked_job_class()(job_id, queue, _queue_name=queue_name, _deserializer=deserialize)


@functools.cache
def _checked_job_class() -> type[Job]:
    """arq's ``Job``, whose unreadable keys in Redis become a refusal naming them.

    Built on first use: arq is not imported while the CLI starts.
    """
    from arq.jobs import DeserializationError, Job, JobDef
    from redis.exceptions import ResponseError

    from worker.quarantine import damaged
    from worker.status import UnreadableData

    class CheckedJob(Job):
        __slots__ = ()

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
