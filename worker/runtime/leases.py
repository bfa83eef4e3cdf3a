"""Short, renewed in-progress leases: lost work is recovered in seconds, not minutes.

arq marks a running job with an in-progress key that lives for the longest job timeout
plus 10 s, and a job whose worker died is only picked up again once that key expires.
Here the key becomes a short lease once the job runs and is renewed while it runs, so a
long job keeps its lease and a SIGKILLed worker's jobs return within one lease.

``ClaimingWorker`` (``worker.runtime.claiming``) claims a job with its lease already. For a worker
that claims as arq does, a job's first lease is not written as it starts: every
``FIRST_LEASE_SECONDS`` one pipeline leases all the jobs started since, and most short
jobs have ended by then and need none. A SET per job start cost 0.07 ms of CPU per job, a
tenth of a one-row job's (bench/, issue 14). Until then the job holds arq's raw claim,
which is what the next paragraph is about, and which every worker caps anyway.

One window is left by arq itself: it claims a job (in-progress key ``1``) before the job
starts. A worker, or Redis, dying inside that window leaves a claim that no one renews and
that would hold the job for minutes. So every worker, on each renewal, also caps the
claims at the head of the queue to one lease. Only arq's raw claims are capped: a lease is
marked by its value, and no worker ever shortens another's, whatever lease length that one
was configured with. A capped claim of a running job lives at least the shortest lease
(2 s), and its first lease comes sooner than that. A worker caps only while it holds
leases or its last claim met ready jobs something holds (``Claim.held``): an idle worker
of an idle queue sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from redis.exceptions import ResponseError

from worker.ops.queue_state import MIN_HEAD_DEPTH, lease_value
from worker.quarantine import WRONG_TYPE, shown
from worker.runtime.prometheus import LEASES_LAPSED, LEASES_RECOVERED
from worker.runtime.quarantining import quarantine_entry
from worker.runtime.tasks import cancel_and_wait

log = logging.getLogger("worker.leases")
LEASES_KEY = "leases"
ARQ_CLAIM = "1"  # what arq's start_jobs writes; arq only ever tests the key's existence
# Well inside the shortest lease any worker may cap a raw claim to (JOBS_LEASE_SECONDS >= 2).
FIRST_LEASE_SECONDS = 0.5

# KEYS: in-progress keys; ARGV[1]: the lease in ms. PEXPIRE ... LT (Redis 7) only shortens.
# Returns {capped, index, type, index, type...}: how many were capped, and the keys (by
# position) that hold another type than a string, which no worker wrote.
_CAP_CLAIMS = f"""
local capped, damaged = 0, {{}}
for i, key in ipairs(KEYS) do
  local claim = redis.pcall('get', key)
  if type(claim) == 'table' then
    damaged[#damaged + 1] = i
    damaged[#damaged + 1] = redis.call('type', key).ok
  elseif claim == '{ARQ_CLAIM}' and redis.call('pexpire', key, ARGV[1], 'LT') == 1 then
    capped = capped + 1
  end
end
return {{capped, damaged}}
"""


def head_depth(max_jobs: int) -> int:
    """How many ready jobs at the head of the queue to look at for orphaned claims."""
    return max(MIN_HEAD_DEPTH, 5 * max_jobs)


class LeaseKeeper:
    def __init__(
        self,
        redis: ArqRedis,
        queue_name: str,
        lease_seconds: float,
        depth: int = MIN_HEAD_DEPTH,
        holder: str = "",
    ) -> None:
        self.redis = redis
        self.holder = holder  # the worker id, shown by the console beside each running job
        self.queue_name = queue_name
        self.lease_ms = int(lease_seconds * 1000)
        self.depth = depth
        self.running: set[str] = set()
        self.unleased: set[str] = set()  # started since the last lease pipeline
        self.head_held = False  # the last claim met ready jobs that something holds
        self._task: asyncio.Task[None] | None = None
        self._cap_script = redis.register_script(_CAP_CLAIMS)
        self._capping = True

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._renew_forever())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    def acquire(self, job_id: str) -> None:
        """A job starts here: it gets its lease with the next ``lease_started``."""
        self.running.add(job_id)
        self.unleased.add(job_id)

    def release(self, job_id: str) -> None:
        self.running.discard(job_id)
        self.unleased.discard(job_id)

    async def lease_started(self) -> None:
        """Turn the claims of the jobs started since the last call into leases."""
        if not self.unleased:
            return
        started, self.unleased = list(self.unleased), set()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in started:
                    pipe.set(
                        in_progress_key_prefix + job_id,
                        lease_value(self.holder),
                        xx=True,
                        px=self.lease_ms,
                    )
                leased = await pipe.execute()
        except BaseException:
            self.unleased.update(job_id for job_id in started if job_id in self.running)
            raise
        for job_id, done in zip(started, leased, strict=True):
            if not done and job_id in self.running:
                LEASES_LAPSED.labels("before_start").inc()
                log.warning("job %s: its claim lapsed before it started; it may run twice", job_id)

    async def _renew_forever(self) -> None:
        renew_every = self.lease_ms / 3000
        last_renewal = time.monotonic()
        while True:
            await asyncio.sleep(FIRST_LEASE_SECONDS)
            try:
                await self.lease_started()
                if time.monotonic() - last_renewal >= renew_every:
                    last_renewal = time.monotonic()
                    await self.tick()
            except Exception:  # a Redis hiccup must not stop renewal for good
                log.warning("could not renew job leases; will try again", exc_info=True)

    async def tick(self) -> None:
        """What runs every third of a lease: renew ours, cap orphaned claims (while jobs
        run here, or held ones wait at the head)."""
        if not self.running and not self.head_held:
            return
        await self.renew()
        await self._cap_if_supported()

    async def renew(self) -> None:
        """Extend the lease of every job running here; a lapsed one is reported, not revived."""
        running = list(self.running - self.unleased)  # those get a lease of their own
        if not running:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in running:
                pipe.pexpire(in_progress_key_prefix + job_id, self.lease_ms)
            renewed = await pipe.execute()
        for job_id, alive in zip(running, renewed, strict=True):
            if not alive and job_id in self.running:
                LEASES_LAPSED.labels("running").inc()
                log.warning("job %s: its lease lapsed while it ran; it may run twice", job_id)

    async def _cap_if_supported(self) -> None:
        if not self._capping:
            return
        try:
            await self.cap_claims()
        except ResponseError as error:
            if not _unsupported(error):
                raise
            self._capping = False
            log.warning(
                "orphaned job claims cannot be capped on this Redis (%s; it takes Redis 7 "
                "scripting): a job whose worker died before starting it waits arq's timeout",
                error,
            )

    async def cap_claims(self) -> int:
        """Cut arq's claims on the ready head of the queue to one lease; how many were cut.

        A claim of another type than arq's would hold its job for ever (it looks running):
        its entry is quarantined."""
        head = await self.redis.zrangebyscore(
            self.queue_name, min=float("-inf"), max=timestamp_ms(), start=0, num=self.depth
        )
        if not head:
            return 0
        prefix = in_progress_key_prefix.encode()  # any id, even one that is not UTF-8
        keys = [prefix + job_id for job_id in head]
        capped, damaged = await self._cap_script(keys=keys, args=[self.lease_ms])
        if capped:
            LEASES_RECOVERED.inc(capped)
            log.debug("capped %d job claims to one lease", capped)
        for position, kind in zip(damaged[::2], damaged[1::2], strict=True):
            await self._set_aside(head[position - 1], kind.decode())
        return int(capped)

    async def _set_aside(self, job_id: bytes, kind: str) -> None:
        claim = shown(in_progress_key_prefix.encode() + job_id)
        detail = f"{claim} holds a {kind}, not a claim"
        queue, holder = self.queue_name, self.holder
        if await quarantine_entry(self.redis, queue, job_id, WRONG_TYPE, detail, holder):
            log.error("queue entry %r quarantined: %s", shown(job_id), detail)


def _unsupported(error: ResponseError) -> bool:
    """No scripting (``unknown command 'evalsha'``) or no ``PEXPIRE ... LT`` (before 7)."""
    message = str(error).lower()
    return "unknown command" in message or "wrong number of arguments" in message


def keeper_of(ctx: dict[str, Any]) -> LeaseKeeper:
    keeper = ctx.get(LEASES_KEY)
    if not isinstance(keeper, LeaseKeeper):
        raise RuntimeError("lease keeper missing: on_startup did not run")
    return keeper
