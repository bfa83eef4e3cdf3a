"""arq's poll loop over every lane, with a doorbell instead of a poll every 10 ms when idle.

arq polls its queue every ``poll_delay`` (10 ms here) whether or not there is work: about
100 Redis commands per second per idle worker. Here a worker with no job running that
found nothing to claim blocks on the doorbell list (BLPOP) until a producer rings it, the
first deferred job is due (the claim script says when), its next cron tick is due, or
``idle_wait`` (``JOBS_IDLE_WAIT_SECONDS``) passes: two commands per wait. A producer rings
once per enqueue call (``worker.ops.enqueue``, and the pool ``worker.bootstrap.open_pool``
opens), a worker that leaves ready work behind rings for the next idle one, and a worker
that defers a job for a later try rings too, so that an idle worker learns when it is due.
Only a job enqueued by a client that does not ring (an arq pool of its own) waits, for
``idle_wait`` at most.

A busy worker hears no bell: it polls. Halfway between two polls it claims from the most
urgent lane alone (a script call that reads that lane only, 0.014 ms of Redis where a
whole claim reads past a bulk backlog's capped run for 0.24 ms), so an interactive job
waits a quarter of ``poll_delay`` on average rather than half of it (`python -m bench
--only lanes`, its lanes-on backlog alone: 15.5-18.1 ms at the p50 without, 12.2-13.1
with).

The BLPOP blocks past the watchdog's bound on a reply by design (``blocking_for``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from datetime import datetime

import arq.worker
from arq.connections import create_pool, log_redis_info
from arq.utils import timestamp_ms, to_unix_ms

from worker.lanes import LANES, doorbell_key, lane_queue, lane_queues
from worker.registry import lane_of
from worker.runtime.claim_script import Claim
from worker.runtime.watchdog import blocking_for

log = logging.getLogger("worker.polling")
IDLE_WAIT_SECONDS = 30.0
# How far ahead a cron tick is enqueued (arq's window, twice): the wait ends at the tick.
CRON_WINDOW_SECONDS = 0.5
MIN_WAIT_SECONDS = 0.005  # shorter than this, the next poll comes as soon


# The queue a job's task reads as ``queue_name``: the sorted set of the job's lane, where
# arq finishes the job or re-scores it for its next try.
LANE_QUEUE: contextvars.ContextVar[str | None] = contextvars.ContextVar("lane", default=None)


class LanePolling(arq.worker.Worker):
    """The poll loop of ``ClaimingWorker``; ``claim_ready`` is its claim."""

    base_queue: str  # arq's queue name: the most urgent lane, and the stem of every key
    idle_wait: float = IDLE_WAIT_SECONDS

    @property
    def queue_name(self) -> str:
        return LANE_QUEUE.get() or self.base_queue

    @queue_name.setter
    def queue_name(self, name: str) -> None:
        self.base_queue = name

    async def claim_ready(self, *, urgent_only: bool = False) -> Claim | None:
        raise NotImplementedError

    async def claim_urgent(self) -> None:
        raise NotImplementedError

    async def main(self) -> None:
        """arq's ``main``, except that a burst ends once every lane is empty."""
        if self._pool is None:
            self._pool = await create_pool(
                self.redis_settings,
                job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer,
                default_queue_name=self.base_queue,
                expires_extra_ms=self.expires_extra_ms,
            )
        log.info(
            "Starting worker for %d functions: %s", len(self.functions), ", ".join(self.functions)
        )
        await log_redis_info(self.pool, log.info)
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self._poll_iteration()
            if self.burst and (
                0 <= self.max_burst_jobs <= self._jobs_started() or await self.queued() == 0
            ):
                await asyncio.gather(*self.tasks.values())
                return
            if self.job_counter > 0 and not self.burst:  # busy: the urgent lane, halfway
                await asyncio.sleep(max(0.0, started + self.poll_delay_s / 2 - loop.time()))
                await self.claim_urgent()
            await asyncio.sleep(max(0.0, started + self.poll_delay_s - loop.time()))

    async def queued(self) -> int:
        """The jobs of every lane, waiting or running."""
        async with self.pool.pipeline(transaction=False) as pipe:
            for queue in lane_queues(self.base_queue):
                pipe.zcard(queue)
            counts = await pipe.execute()
        return sum(int(count) for count in counts)

    async def _poll_iteration(self) -> None:
        claim = None
        if self.allow_pick_jobs and not (
            self.burst and 0 <= self.max_burst_jobs <= self._jobs_started()
        ):
            claim = await self.claim_ready()
        if self.allow_abort_jobs:
            await self._cancel_aborted_jobs()
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # arq's way of letting run_job's errors out
        ticks = [job.next_run for job in self.cron_jobs]
        await self.heart_beat()
        cron_enqueued = ticks != [job.next_run for job in self.cron_jobs]
        idle = claim is not None and not claim.jobs and self.job_counter == 0
        if idle and self.idle_wait > 0 and not self.burst and not cron_enqueued:
            assert claim is not None
            await self.wait_for_work(claim.next_due_ms)

    async def wait_for_work(self, next_due_ms: int | None) -> None:
        """Block until a producer rings, the next deferred job or cron tick is due, or the
        idle wait ends."""
        wait = self.idle_wait_seconds(next_due_ms, timestamp_ms())
        if wait >= MIN_WAIT_SECONDS:
            # BLPOP takes a fractional timeout (Redis >= 6); redis-py types it as int.
            bell = [doorbell_key(self.base_queue)]
            with blocking_for(wait):
                await self.pool.execute_command("BLPOP", *bell, round(wait, 3))  # type: ignore[no-untyped-call]

    def idle_wait_seconds(self, next_due_ms: int | None, now_ms: int) -> float:
        """How long an idle worker may wait: until the first of the next deferred job
        (``next_due_ms``, from its claim), its next cron tick, and ``idle_wait``."""
        wait = self.idle_wait
        ticks = [to_unix_ms(job.next_run) for job in self.cron_jobs if job.next_run is not None]
        for due_ms in (next_due_ms, *ticks):
            if due_ms is not None:
                wait = min(wait, (due_ms - now_ms) / 1000)
        return wait

    async def record_health(self) -> None:
        """arq's health key (``arq --check``), every ``health_check_interval`` as arq
        writes it, but living one idle wait longer: this loop may block that long."""
        now = time.time()
        if now - self._last_health_check < self.health_check_interval:
            return
        self._last_health_check = now
        running = sum(not task.done() for task in self.tasks.values())
        queued = await self.pool.zcard(self.base_queue)
        line = (
            f"{datetime.now():%b-%d %H:%M:%S} j_complete={self.jobs_complete} "
            f"j_failed={self.jobs_failed} j_retried={self.jobs_retried} j_ongoing={running} "
            f"queued={queued}"
        )
        lives_ms = int((self.health_check_interval + self.idle_wait + 1) * 1000)
        await self.pool.psetex(self.health_check_key, lives_ms, line.encode())

    async def heart_beat(self) -> None:
        await self.record_health()
        window = max(self.poll_delay_s, CRON_WINDOW_SECONDS)
        await self.run_cron(datetime.now(tz=self.timezone), window)

    async def run_cron(self, n: datetime, delay: float, num_windows: int = 2) -> None:
        """arq's cron, each tick enqueued in the lane of its job."""
        every = self.cron_jobs
        try:
            for lane in LANES:
                self.cron_jobs = [job for job in every if lane_of(job.name) == lane]
                if self.cron_jobs:
                    await self._run_cron_in(
                        lane_queue(self.base_queue, lane), n, delay, num_windows
                    )
        finally:
            self.cron_jobs = every

    async def _run_cron_in(self, queue: str, n: datetime, delay: float, num_windows: int) -> None:
        token = LANE_QUEUE.set(queue)
        try:
            await super().run_cron(n, delay, num_windows)
        finally:
            LANE_QUEUE.reset(token)


__all__ = ["IDLE_WAIT_SECONDS", "LANE_QUEUE", "LanePolling"]
