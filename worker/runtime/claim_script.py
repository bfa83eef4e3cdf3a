"""The claim of one poll, in one script call (``claim.lua``, beside this module): lanes,
pauses, caps and the doorbell.

The script reads the ready head of each lane (``worker.lanes``), most urgent first, and
claims the jobs arq would (no in-progress key, due) by writing their lease. On every
``SHARE_EVERY``-th claim of the cluster the lower lanes go first, and a worker of more than
one slot never fills its last one from a lower lane: bulk work keeps a share however busy
the interactive lane is, and an interactive job never waits for a bulk job to end.

A paused lane is not read; a job of a paused kind is left where it is. A kind with a cap
keeps the ids of its claimed jobs in a set; a member whose in-progress key is gone (the
job ended, was retried, or its worker died and the lease lapsed) is dropped as the set is
counted, so a dead worker's slots return with its leases. A job's kind is read off the
first bytes of its data (arq writes ``{"t":..,"f":"<function>",...``), only while some
kind is paused or capped. Pausing a kind skips its jobs among the first ``depth`` ready
entries of a lane: jobs of other kinds queued behind a long run of paused ones wait.

A lane is read ``SCAN_PAGE`` entries at a time. Once a claim has passed over a page's
worth of jobs at their cap, it reads one more page, at a place in the first ``depth``
entries that moves on with each of the worker's claims, and stops: a bulk backlog's
capped run cost every poll of every busy worker 250 entries (3.3 us each, 0.83 ms of
Redis), and now costs 64 (0.24 ms), while a job of another kind anywhere in the depth is
still found within ``depth / SCAN_PAGE`` claims (8; 80 ms of polls).

Keys are derived from the queue name in the script (one Redis server, not a cluster).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, retry_key_prefix
from redis.commands.core import AsyncScript

from worker.lanes import (
    DOORBELL_TOKENS,
    LANES,
    SHARE_EVERY,
    Lane,
    doorbell_key,
    lane_queues,
    limits_key,
    paused_key,
    running_key,
    turn_key,
)
from worker.runtime.first_read import RETRY_KEY_SECONDS, FirstRead

SCAN_PAGE = 32  # entries of a lane read at a time

_CLAIM = Path(__file__).with_name("claim.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Claimed:
    """One job claimed: its id as Redis holds it, its score, the lane it waits in, and
    the answers to arq's first read of it (None: arq reads it itself)."""

    job_id: bytes
    score: int
    lane: Lane
    first_read: FirstRead | None = None


@dataclass(frozen=True)
class Claim:
    jobs: list[Claimed]
    next_due_ms: int | None  # nothing claimed: when the first deferred job is due
    # Ready jobs of the first lane that something holds: running elsewhere, or a claim
    # whose worker died before the job started (``worker.runtime.leases`` caps those).
    held: int = 0


class Claimer:
    """Runs the claim script for one worker."""

    def __init__(self, redis: ArqRedis, queue_name: str, depth: int, *, aborts: bool) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.depth = depth
        self.aborts = aborts  # the worker takes abort requests (arq's allow_abort_jobs)
        self.answers_reads = True  # off once arq asked another first read (first_read)
        self._claims = 0  # where a long capped run is read past (SCAN_PAGE)
        self._script: AsyncScript = redis.register_script(_CLAIM)
        self._keys = [
            *lane_queues(queue_name),
            turn_key(queue_name),
            paused_key(queue_name),
            limits_key(queue_name),
            doorbell_key(queue_name),
            abort_jobs_ss,
        ]

    async def claim(
        self,
        *,
        now_ms: int,
        lease_ms: int,
        wanted: int,
        lower_wanted: int,
        lease_value: str,
        limits: Mapping[str, int],
        lanes: int = len(LANES),
    ) -> Claim:
        args: list[str | int] = [
            now_ms,
            lease_ms,
            wanted,
            lower_wanted,
            lease_value,
            self.depth,
            SHARE_EVERY,
            in_progress_key_prefix,
            job_key_prefix,
            running_key(self.queue_name, ""),
            DOORBELL_TOKENS,
            retry_key_prefix,
            RETRY_KEY_SECONDS,
            self._reads(),
            SCAN_PAGE,
            self._claims,
            lanes,
            *LANES[:lanes],
        ]
        for name, cap in limits.items():
            args += (name, cap)
        keys = [*self._keys[:lanes], *self._keys[len(LANES) :]]
        reply = await self._script(keys=keys, args=args)
        self._claims += lanes == len(LANES)
        next_due, held = int(reply[0]), int(reply[1])
        rest = reply[2:]
        jobs = [self._claimed(*rest[i : i + _FIELDS]) for i in range(0, len(rest), _FIELDS)]
        return Claim(jobs, None if next_due < 0 else next_due, held)

    def _reads(self) -> str:
        if not self.answers_reads:
            return "off"
        return "job+abort" if self.aborts else "job"

    def _claimed(
        self,
        job_id: bytes,
        score: bytes,
        lane: int,
        data: bytes | None,
        tries: int | None,
        aborted: int,
    ) -> Claimed:
        read = None
        if tries is not None:
            name = job_id.decode(errors="replace")
            read = FirstRead(name, data, tries, aborted == 1, abort_read=self.aborts)
        return Claimed(job_id, int(float(score)), LANES[lane - 1], read)


_FIELDS = 6  # a claimed job's fields in the script's reply


__all__ = ["Claim", "Claimed", "Claimer"]
