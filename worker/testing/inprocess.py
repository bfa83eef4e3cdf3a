"""An arq queue and worker inside this process, for the demo, the job tests and the benchmark.

The queue is a fakeredis server (or any pool given); the worker is the real ``ClaimingWorker``
built by ``worker.main.build_worker_settings``, the composition root of the worker process,
running on the caller's event loop. Cron jobs stay registered, so they can be enqueued by
name, but never fire on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arq import Worker
from arq.connections import ArqRedis
from arq.cron import CronJob
from arq.jobs import Job
from fakeredis import FakeAsyncRedisConnection, FakeServer
from fakeredis.aioredis import FakeRedis
from redis.typing import EncodableT

from worker.bootstrap import queue_options, ringing
from worker.main import build_worker_settings, cron_jobs
from worker.runtime.claiming import ClaimingWorker
from worker.runtime.tasks import cancel_and_wait
from worker.settings import Settings

PARKED = datetime(9999, 1, 1, tzinfo=UTC)
STOP_GRACE_SECONDS = 10
RESULT_POLL_SECONDS = 0.02
FAKE_INFO = "redis_version:fakeredis\r\n"


class _InfoAnsweringConnection(FakeAsyncRedisConnection):
    """fakeredis has no INFO command, which arq's worker sends once at startup to log the
    server's version. Here fakeredis ECHOes a fixed INFO text instead, and redis-py parses
    the reply as INFO all the same: it picks the parser by the command it was asked for."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        if isinstance(args[0], str) and args[0].upper() == "INFO":
            args = ("ECHO", FAKE_INFO)
        return super().pack_command(*args)


def fake_pool(settings: Settings, server: FakeServer) -> ArqRedis:
    """``open_pool``'s twin on an in-process Redis; every pool on ``server`` sees its keys.

    Its enqueues ring the doorbell as ``open_pool``'s do: an idle worker would otherwise
    take a job only when its wait on the bell ends (the demo's steps waited up to 2 s each).
    """
    redis = FakeRedis(server=server, connection_class=_InfoAnsweringConnection)
    return ringing(ArqRedis(redis.connection_pool, **queue_options(settings)))


def parked_cron_jobs(*, keep_results: bool = False) -> list[CronJob]:
    """The worker's cron jobs, run only when enqueued by name; arq keeps none of their
    results unless ``keep_results`` (then they are kept as long as any job's)."""
    jobs = cron_jobs()
    for job in jobs:
        job.next_run = PARKED
        if keep_results:
            job.keep_result_s = None
    return jobs


def in_process_worker(settings: Settings, pool: ArqRedis, **overrides: Any) -> Worker:
    """The worker the worker process runs, on ``pool``, without signal handlers."""
    options = build_worker_settings(
        settings,
        redis_pool=pool,
        **{"handle_signals": False, "cron_jobs": parked_cron_jobs(), **overrides},
    )
    del options["redis_settings"]  # the pool given replaces it
    return ClaimingWorker(**options)


class WorkerStopped(Exception):
    """The worker ended while a job was still awaited; ``error`` is why, if it failed."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error
        super().__init__(f"the worker stopped: {error!r}" if error else "the worker stopped")


@dataclass(frozen=True)
class Running:
    """A worker running on this event loop, and the task running it."""

    worker: Worker
    task: asyncio.Task[None]

    async def result(self, job: Job, seconds: float) -> Any:
        """``job``'s result (its failure raised), unless the worker stops first
        (``WorkerStopped``) or ``seconds`` pass (``TimeoutError``)."""
        waiting = asyncio.ensure_future(job.result(poll_delay=RESULT_POLL_SECONDS))
        try:
            done, _ = await asyncio.wait(
                {waiting, self.task}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            await cancel_and_wait(waiting)  # stops the polling unless the result came
        if waiting in done:
            return waiting.result()
        if self.task.done():
            raise WorkerStopped(None if self.task.cancelled() else self.task.exception())
        raise TimeoutError(f"job {job.job_id} did not finish within {seconds:g}s")


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Running]:
    """``worker`` running on this event loop until the block ends, then stopped and closed."""
    task = asyncio.get_running_loop().create_task(worker.async_run())
    try:
        yield Running(worker, task)
    finally:
        await stop(worker, task)


async def drain(worker: Worker, seconds: float) -> None:
    """Run a burst worker until its queue is empty (deferred retries included)."""
    async with running(worker) as run:
        await asyncio.wait({run.task}, timeout=seconds)
        if not run.task.done():
            raise TimeoutError(f"the worker did not empty its queue within {seconds:g}s")
        run.task.result()  # the worker's own failure, if any


async def stop(worker: Worker, task: asyncio.Task[None]) -> None:
    """Stop the task running ``worker``, let its jobs in flight end, and close it."""
    await cancel_and_wait(task)
    in_flight = [job for job in worker.tasks.values() if not job.done()]
    if in_flight:  # only after a failure: let the jobs in flight end before closing
        await asyncio.wait(in_flight, timeout=STOP_GRACE_SECONDS)
    try:
        with warnings.catch_warnings():
            # arq 0.28 closes its pool with redis-py's deprecated close().
            warnings.filterwarnings(
                "ignore", message=r"Call to deprecated close\.", category=DeprecationWarning
            )
            await worker.close()
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we are being cancelled ourselves; a job cancelled on close is not news
