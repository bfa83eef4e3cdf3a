"""The jobs still on the queue, one by one: waiting (queued, or deferred until later) and
running, lane by lane (most urgent first, ``worker.lanes``) and in each lane's order, a
page at a time, with their lane, function, enqueue time and the start of their payload.
Every face lists them from here (``dbjobs list --state queued``, ``GET /api/queue/jobs``,
the console's Queued page). A page's position counts through the lanes in that order.

Each entry costs three small reads in one pipeline (the lease, the job's first bytes, its
last bytes): a job may be megabytes, a page reads a few hundred bytes of each. A filter
reads the queue in batches until the page is full or ``MAX_LOOKED_AT`` entries were seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.jobs import JobResult
from arq.utils import timestamp_ms

from worker.lanes import LANES, Lane, lane_queue
from worker.ops.job_state import Sources
from worker.ops.queue_state import read_lease
from worker.quarantine import id_problem
from worker.serialization import function_of
from worker.text import printable

LiveState = Literal["queued", "deferred", "running"]
LIVE_STATES: tuple[LiveState, ...] = ("queued", "deferred", "running")
PREVIEW_BYTES = 400  # the job's first bytes read: its function and the start of its payload
PREVIEW_CHARS = 120  # the payload shown in a list
BATCH = 500
MAX_LOOKED_AT = 50_000  # a filtered page stops there; ``next`` goes on from it
_ARGS = re.compile(rb'^\{"t":(?:\d+|null),"f":"[^"]*","a":')
_ENQUEUED = re.compile(rb',"et":(\d{1,15})\}\s*$')


@dataclass(frozen=True)
class LiveJob:
    job_id: str
    lane: Lane
    function: str | None
    state: LiveState
    enqueued_at: datetime | None
    due_at: datetime  # when a worker may take it (the enqueue time, unless deferred)
    worker: str | None  # running: the worker that holds its lease
    started_at: datetime | None
    payload_preview: str  # the start of its arguments as JSON, printable, bounded


@dataclass(frozen=True)
class LivePage:
    jobs: list[LiveJob]
    next: int | None  # the position in the queue the next page starts from


async def list_live_jobs(
    redis: ArqRedis,
    queue_name: str,
    *,
    state: LiveState | None = None,
    function: str | None = None,
    lane: Lane | None = None,
    limit: int = 50,
    start: int = 0,
) -> LivePage:
    """Up to ``limit`` jobs on the queue from position ``start``, lane by lane (each
    running and due first, deferred last), of ``state``, ``function`` and ``lane`` if given."""
    page = _Page(state, function, limit, timestamp_ms())
    lanes = (lane,) if lane else LANES
    async with redis.pipeline(transaction=False) as pipe:
        for each in lanes:
            pipe.zcard(lane_queue(queue_name, each))
        sizes = await pipe.execute()
    offset = 0  # the position of the lane's first job
    for each, size in zip(lanes, sizes, strict=True):
        queue = lane_queue(queue_name, each)
        if start < offset + size:
            position = await page.read(redis, queue, each, max(start - offset, 0))
            if page.done:
                return LivePage(page.found, offset + position)
        offset += size
    return LivePage(page.found, None)


@dataclass
class _Page:
    state: LiveState | None
    function: str | None
    limit: int
    now_ms: int
    found: list[LiveJob] = field(default_factory=list)
    looked_at: int = 0

    @property
    def done(self) -> bool:
        return len(self.found) >= self.limit or self.looked_at >= MAX_LOOKED_AT

    async def read(self, redis: ArqRedis, queue: str, lane: Lane, position: int) -> int:
        """Jobs of one lane's queue from ``position`` until the page is done or the lane
        ends; the position after the last one read."""
        while not self.done:
            entries = await redis.zrange(queue, position, position + BATCH - 1, withscores=True)
            if not entries:
                break
            for offset, job in enumerate(await _read(redis, entries, self.now_ms, lane)):
                if (
                    job
                    and self.state in (None, job.state)
                    and self.function in (None, job.function)
                ):
                    self.found.append(job)
                    if len(self.found) == self.limit:
                        return position + offset + 1
            position += len(entries)
            self.looked_at += len(entries)
        return position


async def _read(
    redis: ArqRedis, entries: list[tuple[bytes, float]], now_ms: int, lane: Lane
) -> list[LiveJob | None]:
    ids = [raw.decode() if id_problem(raw) is None else None for raw, _ in entries]
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            if job_id is not None:
                pipe.get(in_progress_key_prefix + job_id)
                pipe.getrange(job_key_prefix + job_id, 0, PREVIEW_BYTES - 1)
                pipe.getrange(job_key_prefix + job_id, -32, -1)
        replies = iter(await pipe.execute(raise_on_error=False))
    jobs: list[LiveJob | None] = []
    for job_id, (_, due_ms) in zip(ids, entries, strict=True):
        if job_id is None:  # no worker can run it: the quarantine's business
            jobs.append(None)
            continue
        claim, head, tail = next(replies), next(replies), next(replies)
        if any(isinstance(reply, Exception) for reply in (claim, head, tail)) or not head:
            jobs.append(None)  # ended meanwhile, or not a job of ours
            continue
        jobs.append(_live_job(job_id, lane, due_ms, now_ms, claim, head, tail))
    return jobs


def _live_job(
    job_id: str,
    lane: Lane,
    due_ms: float,
    now_ms: int,
    claim: bytes | None,
    head: bytes,
    tail: bytes,
) -> LiveJob:
    lease = read_lease(claim) if claim is not None else None
    state: LiveState = (
        "running" if claim is not None else "deferred" if due_ms > now_ms else "queued"
    )
    enqueued = _ENQUEUED.search(tail)
    return LiveJob(
        job_id=job_id,
        lane=lane,
        function=function_of(head),
        state=state,
        enqueued_at=_time(int(enqueued[1])) if enqueued else None,
        due_at=_time(int(due_ms)),
        worker=lease[1] if lease else None,
        started_at=_time(lease[0]) if lease else None,
        payload_preview=preview(head),
    )


def preview(head: bytes) -> str:
    """The start of a job's arguments, as printable text of at most ``PREVIEW_CHARS``."""
    arguments = _ARGS.match(head)
    end = head.rfind(b',"k":') if _ENQUEUED.search(head) else len(head)  # read whole
    text = head[arguments.end() if arguments else 0 : end].decode(errors="replace")
    text = printable(text)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _time(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, UTC)


@dataclass(frozen=True)
class OnTheQueue:
    """What Redis holds of a job not yet ended: when it was enqueued and its payload."""

    enqueued_at: datetime
    payload: Any


async def on_the_queue(sources: Sources, job_id: str) -> OnTheQueue | None:
    """The enqueue time and payload of a job Redis still holds (a job's own page); None
    once it has ended."""
    definition = await (await sources.job(job_id)).info()
    if definition is None or isinstance(definition, JobResult):  # ended: the result has it
        return None
    args = list(definition.args)
    payload = args[0] if len(args) == 1 else args
    return OnTheQueue(definition.enqueue_time, payload)
