"""arq's ``Job`` for reading a job's keys, where data arq cannot read (a pickle, another
program's) is a refusal naming the key (``worker.status.UnreadableData``), not a crash."""

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

    from worker.status import UnreadableData

    class CheckedJob(Job):
        __slots__ = ()

        async def result_info(self) -> JobResult | None:
            try:
                return await super().result_info()
            except DeserializationError as problem:
                raise UnreadableData(self.job_id, problem, result=True) from None

        async def info(self) -> JobDef | None:
            # arq's info() reads the result through result_info() above, then the job.
            try:
                return await super().info()
            except DeserializationError as problem:
                raise UnreadableData(self.job_id, problem, result=False) from None

    return CheckedJob
