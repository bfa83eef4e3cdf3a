"""The demo's queue connections and its arq worker, running on the demo's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import arq.worker
from arq import Worker, create_pool
from arq.connections import ArqRedis
from arq.cron import CronJob
from fakeredis import FakeServer
from fakeredis.aioredis import FakeRedis

from worker.config import Settings
from worker.connections import redis_settings
from worker.demo.setup import DemoError, Target, brief, redact
from worker.main import build_worker_settings, cron_jobs
from worker.serialization import deserialize, serialize
from worker.tasks import cancel_and_wait

# The demo runs each cron job once, on demand; left alone they would fire on the clock.
PARKED = datetime(9999, 1, 1, tzinfo=UTC)
STOP_GRACE_SECONDS = 10


@dataclass
class Queues:
    """The producer's connection and the worker's own, on the same Redis."""

    producer: ArqRedis
    worker: ArqRedis


@contextlib.asynccontextmanager
async def open_queues(target: Target, settings: Settings) -> AsyncIterator[Queues]:
    server = FakeServer() if target.in_process else None

    async def connect() -> ArqRedis:
        if server is not None:
            return _fake_client(server, settings)
        return await _real_client(settings)

    async with contextlib.AsyncExitStack() as stack:
        producer = await connect()
        stack.push_async_callback(producer.aclose)
        worker = await connect()
        # The worker closes this one too as it stops; a second close is harmless.
        stack.push_async_callback(worker.aclose)
        yield Queues(producer, worker)


def _fake_client(server: FakeServer, settings: Settings) -> ArqRedis:
    return ArqRedis(
        FakeRedis(server=server).connection_pool,
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=settings.queue_name,
    )


async def _real_client(settings: Settings) -> ArqRedis:
    try:
        return await create_pool(
            redis_settings(settings),
            job_serializer=serialize,
            job_deserializer=deserialize,
            default_queue_name=settings.queue_name,
        )
    except Exception as error:
        where = redact(settings.redis_url.get_secret_value())
        raise DemoError(f"could not reach Redis at {where}: {brief(error)}") from error


def parked_cron_jobs() -> list[CronJob]:
    """The worker's cron jobs, run only when the demo enqueues them by name."""
    jobs = cron_jobs()
    for job in jobs:
        job.next_run = PARKED
        job.keep_result_s = None  # arq keeps no cron result by default; the demo shows them
    return jobs


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, queues: Queues, *, in_process: bool
) -> AsyncIterator[asyncio.Task[None]]:
    """A real arq worker on this event loop, built by the worker's composition root."""
    options = build_worker_settings(
        settings, redis_pool=queues.worker, handle_signals=False, cron_jobs=parked_cron_jobs()
    )
    with _without_redis_info() if in_process else contextlib.nullcontext():
        worker = Worker(**options)
        task = asyncio.get_running_loop().create_task(worker.async_run())
        try:
            yield task
        finally:
            await _stop(worker, task)


@contextlib.contextmanager
def _without_redis_info() -> Iterator[None]:
    # fakeredis has no INFO command, which arq's worker calls once at startup to log.
    async def skip(*_args: Any) -> None:
        return None

    with mock.patch.object(arq.worker, "log_redis_info", skip):
        yield


async def _stop(worker: Worker, task: asyncio.Task[None]) -> None:
    await cancel_and_wait(task)
    running = [job for job in worker.tasks.values() if not job.done()]
    if running:  # only after a failure: let the jobs in flight end before closing
        await asyncio.wait(running, timeout=STOP_GRACE_SECONDS)
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
