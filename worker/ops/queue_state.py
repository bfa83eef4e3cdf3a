"""The queue as operators and alerts see it, read from Redis in a bounded number of round
trips whatever the queue holds: how many jobs are due and deferred, how long the oldest
ready one has waited, the workers (their heartbeats, ``worker.ops.workers``) and the
quarantine's size. Prometheus scrapes it (``worker.ops.queue_prometheus``); the console's
overview also reads the queue's head.

Running jobs sit at the head of the queue (arq claims among the first few hundred ready
entries, see ``worker.runtime.leases``), so reading the head finds them all; their lease
names the worker and when the job started. The functions of the waiting jobs are counted
over the same head, from the first bytes of each job (a job may be megabytes): right for a
page, wrong for an alert, which is why the head is read only when asked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.utils import timestamp_ms

from worker.lanes import LANES, Lane, lane_queues, paused_key
from worker.ops.submissions import SUBMISSIONS_SHOWN, SubmissionProgress, read_progress
from worker.ops.workers import Roster, read_roster
from worker.quarantine import Quarantined, id_problem, quarantine_key
from worker.registry import generation_of
from worker.serialization import function_of

# arq claims a job among the first max(5 x max_jobs, 100) ready entries of the queue, and
# an entry only moves up from there: this depth covers workers of up to 200 jobs.
MIN_HEAD_DEPTH = 1_000
HEAD_BYTES = 200  # enough for arq's {"t":..,"f":"<function>","a": prefix
HEAD_MARGIN = 100  # ready entries looked at beyond the running ones, for the oldest waiting
MAX_RUNNING_LOOKED_AT = 10_000  # whatever heartbeats claim to run, the read stays bounded
QUARANTINE_SHOWN = 10  # the latest records read with the head; `dbjobs quarantine` lists more
LEASE_MARK = "lease"  # a lease's value: "lease <started, ms since the epoch> <worker id>"


def lease_value(holder: str) -> str:
    """A lease's value, starting now: the console shows its worker and age."""
    return f"{LEASE_MARK} {timestamp_ms()} {holder}"


def read_lease(value: bytes | None) -> tuple[int, str] | None:
    """A lease's start (ms since the epoch) and worker id; None for arq's bare claim (or a
    lease of an older worker, which named neither)."""
    parts = (value or b"").decode(errors="replace").split(" ", 2)
    if len(parts) != 3 or parts[0] != LEASE_MARK or not _milliseconds(parts[1]):
        return None
    return int(parts[1]), parts[2]


def _milliseconds(text: str) -> bool:
    """A time in ms since the epoch that a datetime can hold (year 5138 at most)."""
    return text.isascii() and text.isdigit() and len(text) <= 14


@dataclass(frozen=True)
class RunningJob:
    job_id: str
    function: str | None
    worker: str | None  # None: claimed by arq a moment ago, its lease not yet taken
    started_at: datetime | None

    def age_seconds(self, now: datetime) -> float | None:
        return None if self.started_at is None else (now - self.started_at).total_seconds()


@dataclass(frozen=True)
class QueueHead:
    """The first entries of the queue, read one by one, and the quarantine's latest records."""

    running: list[RunningJob]
    by_function: dict[
        str, int
    ]  # waiting (due, not running) jobs by function, over the entries read
    sampled: int  # entries read
    # Entries of those (or the queue itself) that could not be read: an id that is not
    # UTF-8, keys of the wrong type. Skipped here; a worker quarantines them.
    unreadable: int
    quarantine: list[Quarantined]  # newest first, at most QUARANTINE_SHOWN
    submissions: tuple[SubmissionProgress, ...] = ()  # in progress, the most queued first
    # Generations whose chunks are in the head: their progress is the history's to tell.
    generations: tuple[int, ...] = ()


@dataclass(frozen=True)
class LaneDepth:
    """One lane's jobs (``worker.lanes``): due (ready or running) and deferred."""

    lane: Lane
    due: int
    deferred: int


@dataclass(frozen=True)
class QueueState:
    due: int  # due now: ready, and running (arq keeps a job in the queue until it ends)
    deferred: int  # due later: retries backing off, jobs enqueued with a delay
    oldest_ready_age: float  # seconds the longest-waiting ready job has been due; 0: none
    workers: Roster  # live, and fallen silent (stuck or killed) in the last few minutes
    quarantined: int  # records in the queue's quarantine (worker.quarantine)
    head: QueueHead | None = None  # read only when asked for
    lanes: tuple[LaneDepth, ...] = ()  # the sums above, lane by lane
    paused: frozenset[str] = frozenset()  # "lane:<lane>" and "job:<job>" (worker.ops.controls)

    @property
    def total(self) -> int:
        return self.due + self.deferred

    @property
    def running(self) -> int:
        """Jobs started on a live worker (their heartbeats' sum)."""
        return self.workers.running

    @property
    def ready(self) -> int:
        """Due, and waiting for a worker."""
        return max(0, self.due - self.running)


async def read_queue(redis: ArqRedis, queue_name: str, *, head: int = 0) -> QueueState:
    """The state of ``queue_name``, every lane of it; with ``head``, the first ``head``
    entries of each lane read one by one too (``MIN_HEAD_DEPTH`` finds every running job)."""
    workers = await read_roster(redis, queue_name)
    now = timestamp_ms()
    queues = lane_queues(queue_name)
    async with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.zcount(queue, "-inf", now)
            pipe.zcount(queue, f"({now}", "+inf")
            # A running job stays in the queue until it ends, at the head if it started
            # long ago: the oldest waiting one is among the first `running + margin` due.
            looked_at = min(workers.running, MAX_RUNNING_LOOKED_AT) + HEAD_MARGIN
            pipe.zrangebyscore(queue, "-inf", now, start=0, num=looked_at, withscores=True)
        pipe.llen(quarantine_key(queue_name))
        pipe.smembers(paused_key(queue_name))
        if head:
            for queue in queues:
                pipe.zrange(queue, 0, head - 1, withscores=True)
            pipe.lrange(quarantine_key(queue_name), 0, QUARANTINE_SHOWN - 1)
        replies = await pipe.execute(raise_on_error=False)
    lanes, due_first = _lane_depths(replies[: 3 * len(queues)])
    quarantined, paused = replies[3 * len(queues) : 3 * len(queues) + 2]
    entries = replies[3 * len(queues) + 2 :]
    return QueueState(
        due=sum(lane.due for lane in lanes),
        deferred=sum(lane.deferred for lane in lanes),
        oldest_ready_age=await _oldest_waiting_age(redis, due_first, now),
        workers=workers,
        quarantined=0 if isinstance(quarantined, Exception) else int(quarantined),
        head=await _read_head(redis, now, _merged(entries[:-1]), entries[-1]) if head else None,
        lanes=lanes,
        paused=frozenset() if isinstance(paused, Exception) else _texts(paused),
    )


def _lane_depths(
    replies: list[object],
) -> tuple[tuple[LaneDepth, ...], list[tuple[bytes, float]]]:
    """Each lane's depth from its three replies, and the due heads of all lanes, oldest first."""
    depths, due_first = [], []
    for lane, (due, deferred, first) in zip(
        LANES, zip(replies[::3], replies[1::3], replies[2::3], strict=True), strict=True
    ):
        if isinstance(first, Exception) or not isinstance(first, list):
            due, deferred, first = 0, 0, []  # not a sorted set: a worker moves it aside
        depths.append(LaneDepth(lane, int(str(due)), int(str(deferred))))
        due_first += first
    return tuple(depths), sorted(due_first, key=lambda entry: entry[1])


def _merged(
    heads: list[list[tuple[bytes, float]] | Exception],
) -> list[tuple[bytes, float]] | Exception:
    """The heads of every lane as one list; an error if a lane could not be read."""
    merged: list[tuple[bytes, float]] = []
    for entries in heads:
        if isinstance(entries, Exception):
            return entries
        merged += entries
    return merged


def _texts(members: set[bytes]) -> frozenset[str]:
    return frozenset(member.decode(errors="replace") for member in members)


async def _oldest_waiting_age(
    redis: ArqRedis, due_first: list[tuple[bytes, float]], now_ms: int
) -> float:
    if not due_first:
        return 0.0
    prefix = in_progress_key_prefix.encode()  # any entry, even one that is not UTF-8
    claimed = await redis.mget([prefix + job_id for job_id, _ in due_first])
    for (_, due_ms), claim in zip(due_first, claimed, strict=True):
        if claim is None:
            return max(0.0, (now_ms - due_ms) / 1000)
    return 0.0


async def _read_head(
    redis: ArqRedis,
    now_ms: int,
    scored: list[tuple[bytes, float]] | Exception,
    quarantine: list[bytes] | Exception,
) -> QueueHead:
    latest = [] if isinstance(quarantine, Exception) else quarantine
    records = [Quarantined.from_json(raw) for raw in latest]
    if isinstance(scored, Exception):  # not a sorted set: the next worker moves it aside
        return QueueHead([], {}, 0, unreadable=1, quarantine=records)
    entries = [raw for raw, _ in scored]
    # Deferred entries (due later) are not waiting: "waiting" is one number on every face.
    later = {raw for raw, due_ms in scored if due_ms > now_ms}
    job_ids = [job_id for raw in entries if (job_id := _id(raw)) is not None]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.get(in_progress_key_prefix + job_id)
            pipe.getrange(job_key_prefix + job_id, 0, HEAD_BYTES - 1)
        replies = await pipe.execute(raise_on_error=False)
    running: list[RunningJob] = []
    waiting: Counter[str] = Counter()
    unreadable = len(entries) - len(job_ids)
    for index, job_id in enumerate(job_ids):
        claim, job_head = replies[2 * index], replies[2 * index + 1]
        if isinstance(claim, Exception) or isinstance(job_head, Exception):
            unreadable += 1
            continue
        function = function_of(job_head or b"")
        if claim is None:
            if job_id.encode() not in later:
                waiting[function or "?"] += 1
            continue
        lease = read_lease(claim)
        started = datetime.fromtimestamp(lease[0] / 1000, UTC) if lease else None
        running.append(RunningJob(job_id, function, lease[1] if lease else None, started))
    running.sort(key=lambda job: job.started_at or datetime.max.replace(tzinfo=UTC))
    by_function = dict(waiting.most_common())
    submissions = await read_progress(redis, job_ids, {job.job_id for job in running})
    generations = Counter(g for job_id in job_ids if (g := generation_of(job_id)) is not None)
    found = tuple(g for g, _ in generations.most_common(SUBMISSIONS_SHOWN))
    return QueueHead(running, by_function, len(entries), unreadable, records, submissions, found)


def _id(raw: bytes) -> str | None:
    """A queue entry's job id; None for one no worker can run (see worker.quarantine)."""
    return raw.decode() if id_problem(raw) is None else None
