"""The queue as an operator sees it: what waits, what runs and on which worker, read from
arq's keys in a bounded number of round trips whatever the queue holds.

Running jobs sit at the head of the queue (arq claims among the first few hundred ready
entries, see ``worker.runtime.leases``), so reading the head finds them all; their lease names the
worker and when the job started. The functions of the waiting jobs are counted over the
same head, from the first bytes of each job (a job may be megabytes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.utils import timestamp_ms

from worker.quarantine import id_problem
from worker.runtime.leases import MIN_HEAD_DEPTH, read_lease
from worker.serialization import function_of

HEAD_BYTES = 200  # enough for arq's {"t":..,"f":"<function>","a": prefix


@dataclass(frozen=True)
class RunningJob:
    job_id: str
    function: str | None
    worker: str | None  # None: claimed by arq a moment ago, its lease not yet taken
    started_at: datetime | None

    def age_seconds(self, now: datetime) -> float | None:
        return None if self.started_at is None else (now - self.started_at).total_seconds()


@dataclass(frozen=True)
class QueueView:
    total: int  # entries in the queue: waiting (ready or deferred) and running
    ready: int  # due now (running ones included: arq keeps them in the queue)
    running: list[RunningJob]
    # Waiting jobs by function, counted over the first ``sampled`` entries of the queue.
    by_function: dict[str, int] = field(default_factory=dict)
    sampled: int = 0
    # Entries of the head (or the queue itself) that could not be read: an id that is not
    # UTF-8, keys of the wrong type. Skipped here; a worker quarantines them.
    unreadable: int = 0

    @property
    def waiting(self) -> int:
        return self.total - len(self.running)

    @property
    def deferred(self) -> int:
        return self.total - self.ready

    @property
    def partial(self) -> bool:
        return self.sampled < self.total


async def read_queue(redis: ArqRedis, queue_name: str, depth: int = MIN_HEAD_DEPTH) -> QueueView:
    now = timestamp_ms()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(queue_name)
        pipe.zcount(queue_name, float("-inf"), now)
        pipe.zrange(queue_name, 0, depth - 1)
        total, ready, head = await pipe.execute(raise_on_error=False)
    if isinstance(head, Exception):  # not a sorted set: the next worker moves it aside
        return QueueView(0, 0, [], unreadable=1)
    job_ids = [job_id for raw in head if (job_id := _id(raw)) is not None]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.get(in_progress_key_prefix + job_id)
            pipe.getrange(job_key_prefix + job_id, 0, HEAD_BYTES - 1)
        replies = await pipe.execute(raise_on_error=False)
    running: list[RunningJob] = []
    waiting: Counter[str] = Counter()
    unreadable = len(head) - len(job_ids)
    for index, job_id in enumerate(job_ids):
        claim, job_head = replies[2 * index], replies[2 * index + 1]
        if isinstance(claim, Exception) or isinstance(job_head, Exception):
            unreadable += 1
            continue
        function = function_of(job_head or b"")
        if claim is None:
            waiting[function or "?"] += 1
            continue
        lease = read_lease(claim)
        started = datetime.fromtimestamp(lease[0] / 1000, UTC) if lease else None
        running.append(RunningJob(job_id, function, lease[1] if lease else None, started))
    running.sort(key=lambda job: job.started_at or datetime.max.replace(tzinfo=UTC))
    by_function = dict(waiting.most_common())
    return QueueView(int(total), int(ready), running, by_function, len(head), unreadable)


def _id(raw: bytes) -> str | None:
    """A queue entry's job id; None for one no worker can run (see worker.quarantine)."""
    return raw.decode() if id_problem(raw) is None else None
