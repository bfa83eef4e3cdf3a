"""arq's ``Worker``, claiming all the jobs of one poll in one Redis round trip.

arq's ``start_jobs`` claims each job on its own: WATCH, EXISTS, ZSCORE, then MULTI/PSETEX/
EXEC, four round trips one job after the other in the poll loop, four of the six a
one-row job costs (issue 14). ``ClaimingWorker`` claims every job it has room for in one
script call, with arq's own test (no in-progress key yet, still queued, due), and writes
each claim as a lease (``worker.runtime.leases``) rather than arq's raw claim of the longest
timeout plus 10 s: a job whose worker dies after claiming it returns within one lease.
Every other step of a job (reading it, counting its tries, finishing it) stays arq's.

arq's command line builds ``arq.worker.Worker`` from ``WorkerSettings`` and has no setting
for the class, so ``use_claiming_worker`` gives that name to this one, in the worker
process that asked for our settings.
"""

from __future__ import annotations

import arq.worker
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from redis.commands.core import AsyncScript

from worker.bootstrap import this_worker_id
from worker.runtime.leases import lease_value
from worker.settings import Settings

# KEYS[1]: the queue, KEYS[2..]: the in-progress keys of ARGV[5..], the ids read from its
# ready head. ARGV[1]: now (ms), ARGV[2]: the lease (ms), ARGV[3]: how many to claim,
# ARGV[4]: the lease's value.
# Returns id, score, id, score... of the jobs claimed, in queue order.
_CLAIM = """
local now, wanted = tonumber(ARGV[1]), tonumber(ARGV[3])
local claimed = {}
for i = 2, #KEYS do
  if #claimed >= 2 * wanted then break end
  if redis.call('exists', KEYS[i]) == 0 then
    local id = ARGV[i + 3]
    local score = redis.call('zscore', KEYS[1], id)
    if score and tonumber(score) <= now then
      redis.call('set', KEYS[i], ARGV[4], 'PX', ARGV[2])
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = score
    end
  end
end
return claimed
"""


class ClaimingWorker(arq.worker.Worker):
    """arq's worker with ``start_jobs`` in one round trip; built from the same settings."""

    _claim: AsyncScript | None = None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        room = self.max_jobs - self.job_counter
        if room <= 0 or not job_ids:
            return
        if self._claim is None:
            self._claim = self.pool.register_script(_CLAIM)
        ids = [job_id.decode() for job_id in job_ids]
        claimed = await self._claim(
            keys=[self.queue_name, *[in_progress_key_prefix + job_id for job_id in ids]],
            args=[timestamp_ms(), self._lease_ms(), room, self._lease_value(), *ids],
        )
        for job_id, score in zip(claimed[::2], claimed[1::2], strict=True):
            await self._start(job_id.decode(), int(float(score)))

    async def _start(self, job_id: str, score: int) -> None:
        """arq's bookkeeping for a job it started. The semaphore (max_jobs + 1 permits)
        has room: no more than max_jobs - job_counter were claimed."""
        await self.sem.acquire()
        self.job_counter += 1
        task = self.loop.create_task(self.run_job(job_id, score))
        task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
        self.tasks[job_id] = task

    def _lease_value(self) -> str:
        return lease_value(this_worker_id())

    def _lease_ms(self) -> int:
        settings: Settings = self.ctx["settings"]
        return int(settings.lease_seconds * 1000)


def use_claiming_worker() -> None:
    """Make ``ClaimingWorker`` the worker arq's ``run_worker`` builds in this process."""
    arq.worker.Worker = ClaimingWorker  # type: ignore[misc]


__all__ = ["ClaimingWorker", "use_claiming_worker"]
