"""A job's first read, answered by the claim that took it.

arq's ``run_job`` opens with one round trip, a transaction that reads the job, counts the
try (INCR of its retry key, kept ``RETRY_KEY_SECONDS``) and takes any abort request for it
off ``arq:abort``. The claim script (``worker/runtime/claim.lua``) is running in Redis
just before, so it reads and counts the same for each job it claims and returns the
answers; the job's task hands them to arq's pipeline instead of sending it. Every job
costs one round trip less. During a bulk backlog on a busy machine each round trip waits
for the worker's turn on a CPU: traced under `python -m bench --only lanes`, this one was
6.4 ms of an interactive job's 22 ms enqueue to start (p50).

The claim only looks for an abort request: arq's end of the job takes it (an aborted job
is failed unrun), so a request outlives a worker that dies before the job starts. A job
whose keys are of the wrong type gets no answers and nothing counted: arq's own read meets
the error and ``worker.runtime.claiming`` quarantines the job, as before. The try is
counted a round trip earlier than arq counts it: a worker that dies between its claim and
the job's start has spent a try of the job's, as one dying just after arq's read did.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any, cast

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, job_key_prefix, retry_key_prefix

RETRY_KEY_SECONDS = 88_400  # arq's run_job keeps a job's try count this long


@dataclass(frozen=True)
class FirstRead:
    """What arq's first pipeline of a job would have read."""

    job_id: str
    data: bytes | None  # the job (None: its data is gone, arq fails it as expired)
    job_try: int
    aborted: bool  # an abort request was waiting: arq fails it unrun
    abort_read: bool  # the claim looked for one (the worker takes abort requests)


_PENDING: contextvars.ContextVar[FirstRead | None] = contextvars.ContextVar(
    "first_read", default=None
)


def expect(context: contextvars.Context, answers: FirstRead) -> None:
    """The job task that will run in ``context`` gets ``answers`` for its first read."""
    context.run(_PENDING.set, answers)


def answering(pool: ArqRedis) -> ArqRedis:
    """``pool``; in a job's task whose first read is answered, one whose next pipeline
    returns the answers."""
    answers = _PENDING.get()
    if answers is None:
        return pool
    return cast(ArqRedis, _AnsweringPool(pool, answers))


class _AnsweringPool:
    def __init__(self, pool: ArqRedis, answers: FirstRead) -> None:
        self._pool = pool
        self._answers = answers

    def pipeline(self, transaction: bool = True) -> AnsweredPipeline:
        _PENDING.set(None)  # answered once: every later call goes to Redis
        return AnsweredPipeline(self._answers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class AnsweredPipeline:
    """Takes arq's first read of a job and returns the claim's answers.

    It checks that arq asked what the claim answered: an arq release whose first read
    differs gets ``FirstReadMismatch`` rather than wrong answers, and the worker then
    leaves every first read to arq (``worker.runtime.claiming``)."""

    def __init__(self, answers: FirstRead) -> None:
        self._answers = answers
        self._asked: list[tuple[Any, ...]] = []

    async def __aenter__(self) -> AnsweredPipeline:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    def get(self, key: str) -> AnsweredPipeline:
        self._asked.append(("get", key))
        return self

    def incr(self, key: str) -> AnsweredPipeline:
        self._asked.append(("incr", key))
        return self

    def expire(self, key: str, seconds: int) -> AnsweredPipeline:
        self._asked.append(("expire", key, seconds))
        return self

    def zrem(self, key: str, member: str) -> AnsweredPipeline:
        self._asked.append(("zrem", key, member))
        return self

    async def execute(self) -> list[Any]:
        job_id, answers = self._answers.job_id, self._answers
        retry_key = retry_key_prefix + job_id
        read: list[tuple[Any, ...]] = [("get", job_key_prefix + job_id), ("incr", retry_key)]
        read.append(("expire", retry_key, RETRY_KEY_SECONDS))
        replies = [answers.data, answers.job_try, True]
        if answers.abort_read and self._asked == [*read, ("zrem", abort_jobs_ss, job_id)]:
            return [*replies, int(answers.aborted)]
        if not answers.abort_read and self._asked == read:
            return replies
        raise FirstReadMismatch(
            f"arq's first read of job {job_id} is not the claim's: {self._asked}"
        )


class FirstReadMismatch(RuntimeError):
    """arq asked another first read than the claim answered (another arq release)."""


__all__ = [
    "RETRY_KEY_SECONDS",
    "AnsweredPipeline",
    "FirstRead",
    "FirstReadMismatch",
    "answering",
    "expect",
]
