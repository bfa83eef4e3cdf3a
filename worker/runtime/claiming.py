"""arq's ``Worker``, claiming all the jobs of one poll in one Redis round trip, and never
stopped by what a Redis entry holds.

arq's ``start_jobs`` claims each job on its own: WATCH, EXISTS, ZSCORE, then MULTI/PSETEX/
EXEC, four round trips one job after the other in the poll loop, four of the six a
one-row job costs (issue 14). ``ClaimingWorker`` claims every job it has room for in one
script call, with arq's own test (no in-progress key yet, still queued, due), and writes
each claim as a lease (``worker.runtime.leases``) rather than arq's raw claim of the longest
timeout plus 10 s: a job whose worker dies after claiming it returns within one lease.
The script also answers arq's first read of each job (``worker.runtime.first_read``);
every other step of a job (running it, finishing it) stays arq's.

arq lets anything odd in Redis end the worker, and so every worker that meets it next: an
id that is not UTF-8, a key of the wrong type. Here such an entry is quarantined
(``worker.quarantine``) and the worker carries on; a claim of the wrong type, which makes
its entry look running for ever, is the lease keeper's to find (``worker.runtime.leases``). A job
whose data cannot be run (not JSON, a pickle, the wrong shape, a function not registered)
fails once and is recorded in the job history: a forged job can at most call a registered
job with data that still has to pass validation.

arq aborts a running job (``dbjobs cancel``) from its polling loop; here the abort requests
are read only while jobs run, at most every ``ABORT_READ_SECONDS``, and requests older than
arq's ``abort_job_max_age`` are dropped (arq means to, but its clean-up never matches one,
python-arq/arq#485: a stale request would abort a later job of the same id before it
starts). arq stops the worker by cancelling its polling loop once; on Python 3.11 that one
cancel can be swallowed inside a Redis call (CPython gh-86296), and the worker polled on
after its shutdown. Here the loop also ends at its next turn once arq has asked it to.
A job arq fails without running it (its tries spent before it started, or aborted before
it started) is written to the job history too (``worker.runtime.endings``); one whose data
arq did not find is not failed at all (``worker.runtime.vanished``).

arq's command line builds ``arq.worker.Worker`` from ``WorkerSettings`` and has no setting
for the class, so ``use_claiming_worker`` gives that name to this one, in the worker
process that asked for our settings.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from signal import Signals
from typing import Any, cast

import arq.worker
from arq.connections import ArqRedis
from arq.constants import abort_job_max_age, abort_jobs_ss, in_progress_key_prefix
from arq.cron import CronJob
from arq.utils import timestamp_ms
from redis.exceptions import ResponseError

from worker.bootstrap import SERVICES_KEY, Services, ring_doorbell, this_worker_id
from worker.lanes import LANES, lane_queue, lane_queues
from worker.ops.queue_state import lease_value
from worker.quarantine import BAD_ID, WRONG_TYPE, damaged, id_problem, shown
from worker.registry import default_limits
from worker.runtime.claim_script import Claim, Claimer
from worker.runtime.delivery import REFUSED, refusal, refused
from worker.runtime.endings import ABORTING_KEY, record_unrun
from worker.runtime.first_read import FirstRead, FirstReadMismatch, answering, expect
from worker.runtime.leases import LEASES_KEY, LeaseKeeper
from worker.runtime.polling import LANE_QUEUE, LanePolling
from worker.runtime.quarantining import describe_job_keys, move_aside, quarantine_entry
from worker.runtime.vanished import drop_if_gone, without_data
from worker.serialization import deserialize, why_unreadable
from worker.settings import Settings

log = logging.getLogger("worker.claiming")
# How often a worker running jobs reads the abort requests: a cancel acts within it.
ABORT_READ_SECONDS = 0.25


class ClaimingWorker(LanePolling):
    """arq's worker claiming from every lane in one round trip; built from the same settings."""

    _claimer: Claimer | None = None
    _aborts_read_at = 0.0  # time.monotonic() of the last read of the abort requests
    _stale_aborts_dropped_at = 0.0
    _stopping = False  # arq has cancelled the polling loop to stop the worker

    _read_job: Callable[[bytes], dict[str, Any]]  # the deserializer it was given

    @property
    def pool(self) -> ArqRedis:
        """arq's pool; in a job's task until arq's first pipeline, the claim's answers."""
        return answering(cast(ArqRedis, self._pool))

    async def main(self) -> None:
        # Here rather than in __init__: arq's command line passes a worker only the options
        # that the signature of ``arq.worker.Worker.__init__`` (this class's) names.
        self._read_job = self.job_deserializer or deserialize
        self.job_deserializer = self._job_or_refusal
        self.functions[REFUSED] = arq.worker.func(refused, name=REFUSED, timeout=60)
        self.ctx[ABORTING_KEY] = self.aborting_tasks
        settings = self.ctx.get("settings")
        if isinstance(settings, Settings):
            self.idle_wait = settings.idle_wait_seconds
        await super().main()

    def handle_sig(self, signum: Signals) -> None:
        super().handle_sig(signum)
        self._stopping = True

    async def _wait_for_tasks_to_complete(self, signum: Signals) -> None:
        await super()._wait_for_tasks_to_complete(signum)
        self._stopping = True

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Unused: ``_poll_iteration`` claims from every lane itself (``claim_ready``)."""
        raise NotImplementedError("ClaimingWorker claims in claim_ready")

    async def claim_ready(self, *, urgent_only: bool = False) -> Claim | None:
        """Claim and start what this worker has room for, from every lane (or the most
        urgent alone); with nothing claimed, when the first deferred job is due (ms, None:
        none is)."""
        room = self.max_jobs - self.job_counter
        if room <= 0:
            return None
        if self._claimer is None:
            aborts, depth = self.allow_abort_jobs, self.queue_read_limit
            self._claimer = Claimer(self.pool, self.base_queue, depth, aborts=aborts)
        claim = await self._claimer.claim(
            now_ms=timestamp_ms(),
            lease_ms=self._lease_ms(),
            wanted=room,
            # The last free slot is kept for the most urgent lane.
            lower_wanted=room - 1 if self.max_jobs > 1 else room,
            lease_value=lease_value(this_worker_id()),
            limits=default_limits(),
            lanes=1 if urgent_only else len(LANES),
        )
        if isinstance(keeper := self.ctx.get(LEASES_KEY), LeaseKeeper):
            keeper.head_held = claim.held > 0
        for job in claim.jobs:
            queue = lane_queue(self.base_queue, job.lane)
            if (problem := id_problem(job.job_id)) is not None:
                await self._quarantine(job.job_id, BAD_ID, problem, source=queue)
                continue
            await self._start(job.job_id.decode(), job.score, queue, job.first_read)
        return claim

    async def claim_urgent(self) -> None:
        if self.allow_pick_jobs and not self._stopping:
            await self.claim_ready(urgent_only=True)

    async def _start(self, job_id: str, score: int, queue: str, read: FirstRead | None) -> None:
        """arq's bookkeeping for a job it started. The semaphore (max_jobs + 1 permits)
        has room: no more than max_jobs - job_counter were claimed. The job's task sees its
        lane's queue as ``queue_name`` (arq finishes or re-scores it there) and its read."""
        await self.sem.acquire()
        self.job_counter += 1
        context = contextvars.copy_context()
        context.run(LANE_QUEUE.set, queue)
        if read is not None:
            expect(context, read)
        task = self.loop.create_task(self.run_job(job_id, score), context=context)
        task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
        self.tasks[job_id] = task

    async def run_job(self, job_id: str, score: int) -> None:
        try:
            await super().run_job(job_id, score)
        except FirstReadMismatch as mismatch:  # another arq: it reads its jobs itself now
            log.error("%s: first reads are left to arq from now on", mismatch)
            if self._claimer is not None:
                self._claimer.answers_reads = False
            await self.pool.delete(in_progress_key_prefix + job_id)  # claimed again at once
        except ResponseError as error:
            if not damaged(error):
                raise
            await self._set_aside(job_id, error)

    async def _set_aside(self, job_id: str, error: ResponseError) -> None:
        """A job's delivery that Redis refused for what a key holds: the queue's own keys
        are repaired, and the job quarantined if its keys are the damaged ones."""
        await self._repair()
        problem = await describe_job_keys(self.pool, job_id)
        if problem is not None:
            await self._quarantine(job_id.encode(), WRONG_TYPE, problem)
        else:
            log.warning("job %s: Redis refused a step of it (%s)", job_id, error)

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """arq's end of a try; one deferred for a later try rings the doorbell, so that an
        idle worker learns when it is due (``worker.runtime.polling``)."""
        await super().finish_job(
            job_id,
            finish,
            result_data,
            result_timeout_s,
            keep_result_forever,
            incr_score,
            keep_in_progress,
        )
        if not finish and incr_score:
            await ring_doorbell(self.pool, self.base_queue)

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        if without_data(result_data):  # no "expired" result: it would refuse its id
            await drop_if_gone(self.pool, self.queue_name, job_id)
            return
        await super().finish_failed_job(job_id, result_data)
        services = self.ctx.get(SERVICES_KEY)
        if result_data is not None and isinstance(services, Services):
            await record_unrun(services, job_id, result_data, not_ours={REFUSED})

    async def _poll_iteration(self) -> None:
        if self._stopping:  # arq's cancel of this loop was swallowed: end it here
            raise asyncio.CancelledError
        try:
            await super()._poll_iteration()
        except ResponseError as error:
            if not damaged(error) or not await self._repair():
                raise

    async def wait_for_work(self, next_due_ms: int | None) -> None:
        if self._stopping:  # arq's cancel was swallowed during this turn: no idle wait
            raise asyncio.CancelledError
        await super().wait_for_work(next_due_ms)

    async def _cancel_aborted_jobs(self) -> None:
        now = time.monotonic()
        if not self.tasks or now - self._aborts_read_at < ABORT_READ_SECONDS:
            return
        self._aborts_read_at = now
        if now - self._stale_aborts_dropped_at > abort_job_max_age:  # seconds, in arq
            self._stale_aborts_dropped_at = now
            stale = timestamp_ms() - abort_job_max_age * 1000
            await self.pool.zremrangebyscore(abort_jobs_ss, "-inf", stale)
        try:
            await super()._cancel_aborted_jobs()
        except UnicodeDecodeError:  # arq decodes each abort request's id
            for job_id in await self.pool.zrange(abort_jobs_ss, 0, -1):
                if (problem := id_problem(job_id)) is not None:
                    detail = f"an abort request in {abort_jobs_ss}: {problem}"
                    await self._quarantine(job_id, BAD_ID, detail, source=abort_jobs_ss)

    async def _repair(self) -> list[str]:
        """Move aside whichever key of the queue's holds the wrong type; the keys moved."""
        expected = dict.fromkeys(lane_queues(self.base_queue), "zset")
        expected[abort_jobs_ss] = "zset"
        moved = await move_aside(self.pool, self.base_queue, expected, this_worker_id())
        for key in moved:
            log.error("%s held the wrong type of value: moved aside and recorded", key)
        return moved

    async def _quarantine(
        self, job_id: bytes, reason: str, problem: str, *, source: str | None = None
    ) -> None:
        source = source or self.queue_name  # in a job's task: its lane's queue
        moved = await quarantine_entry(
            self.pool, self.base_queue, job_id, reason, problem, this_worker_id(), source=source
        )
        if moved:
            log.error("queue entry %r quarantined: %s", shown(job_id), problem)

    def _job_or_refusal(self, raw: bytes) -> dict[str, Any]:
        """The job as the deserializer reads it, or else a job of ``REFUSED`` that fails it
        once and records why: one that names no function or one this worker does not have."""
        try:
            job = self._read_job(raw)
        except Exception as problem:
            return refusal(None, why_unreadable(raw, problem))
        function = job.get("f")
        if not isinstance(function, str) or function not in self.functions or function == REFUSED:
            named = str(function)[:100]
            return refusal(function, f"no job {named!r} is registered on this worker")
        if isinstance(self.functions[function], CronJob) and (job.get("a") or job.get("k")):
            return refusal(function, f"{function} is a cron job: it takes no arguments")
        return job

    def _lease_ms(self) -> int:
        settings: Settings = self.ctx["settings"]
        return int(settings.lease_seconds * 1000)


def use_claiming_worker() -> None:
    """Make ``ClaimingWorker`` the worker arq's ``run_worker`` builds in this process."""
    arq.worker.Worker = ClaimingWorker  # type: ignore[misc]


__all__ = ["ClaimingWorker", "use_claiming_worker"]
