"""The composition root: ``arq worker.main.WorkerSettings`` and ``jobs worker`` alike.

Both call ``prepare_worker``, so every setting behaves the same either way. Nothing
(settings, engine, pools) is created when this module is imported: ``WorkerSettings`` is
built when arq asks for it, from the environment of that moment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq.cron import CronJob, cron
from arq.worker import Function, func

from worker.config import Settings
from worker.connections import bound_reply_time, redis_settings
from worker.deps import DEPS_KEY, Deps, deps_of
from worker.heartbeats import start_heartbeat, stop_heartbeat
from worker.history import OutboxDrainer
from worker.jobs import JOBS, Job
from worker.leases import LEASES_KEY, LeaseKeeper, head_depth, keeper_of
from worker.logs import configure_logging, skip_job_trace
from worker.runner import run_job
from worker.serialization import job_deserializer, serialize

log = logging.getLogger("worker")
DRAINER_KEY = "history_drainer"  # in ctx: the task that drains the history outbox


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    await bound_reply_time(ctx["redis"], settings.redis_socket_timeout)
    ctx[DEPS_KEY] = Deps.build(settings, ctx["redis"])
    keeper = LeaseKeeper(
        ctx["redis"],
        settings.queue_name,
        settings.lease_seconds,
        depth=head_depth(settings.max_jobs),
        holder=deps_of(ctx).worker_id,
    )
    keeper.start()
    ctx[LEASES_KEY] = keeper
    drainer = OutboxDrainer(deps_of(ctx))
    drainer.start()
    ctx[DRAINER_KEY] = drainer
    await start_heartbeat(ctx)
    log.info(
        "worker ready: %d jobs at a time, poll every %ss", settings.max_jobs, settings.poll_delay
    )


async def on_shutdown(ctx: dict[str, Any]) -> None:
    await stop_heartbeat(ctx)
    if DRAINER_KEY in ctx:
        await ctx[DRAINER_KEY].stop()
    if LEASES_KEY in ctx:
        await keeper_of(ctx).stop()
    if DEPS_KEY in ctx:
        await deps_of(ctx).dispose()


async def on_job_start(ctx: dict[str, Any]) -> None:
    await keeper_of(ctx).acquire(ctx["job_id"])


async def on_job_end(ctx: dict[str, Any]) -> None:
    keeper_of(ctx).release(ctx["job_id"])


def arq_function(job: Job[Any]) -> Function:
    """``job`` as arq runs it: every delivery through ``run_job``."""

    async def adapter(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return await run_job(ctx, job, args, kwargs)

    adapter.__name__ = adapter.__qualname__ = job.name
    adapter.__doc__ = job.schema.__doc__
    return func(adapter, name=job.name, timeout=job.timeout, max_tries=job.max_tries)


def cron_job(job: Job[Any]) -> CronJob:
    """``job`` on its schedule. Every worker schedules it; the tick's job id (name + time)
    is the same on all of them, and the job ledger lets only one delivery commit."""
    assert job.cron is not None

    async def tick(ctx: dict[str, Any]) -> dict[str, Any]:
        # arq runs a cron job once and keeps its in-progress key for 60 s after, so a Retry
        # would never run: the failure is recorded now and the next tick does the work.
        return await run_job(ctx, job, max_tries=1)

    tick.__name__ = tick.__qualname__ = job.cron_name
    schedule = job.cron
    return cron(
        tick,
        name=job.cron_name,
        second=schedule.second,
        minute=schedule.minute,
        timeout=job.timeout,
        unique=True,
    )


def cron_jobs() -> list[CronJob]:
    return [cron_job(job) for job in JOBS.values() if job.cron is not None]


def build_worker_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker``, as arq reads them from ``WorkerSettings``."""
    return {
        "functions": [arq_function(job) for job in JOBS.values()],
        "cron_jobs": cron_jobs(),
        "queue_name": settings.queue_name,
        "redis_settings": redis_settings(settings),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "on_job_start": on_job_start,
        "on_job_end": on_job_end,
        "ctx": {"settings": settings},
        "max_jobs": settings.max_jobs,
        "poll_delay": settings.poll_delay,
        "job_timeout": settings.job_timeout,
        "max_tries": settings.max_tries,
        "keep_result": settings.keep_result,
        "job_completion_wait": settings.shutdown_grace,
        "job_serializer": serialize,
        "job_deserializer": job_deserializer(settings.max_payload_bytes),
        "health_check_interval": 10,
        "allow_abort_jobs": settings.abort_running_jobs,
        **overrides,
    }


def prepare_worker(settings: Settings) -> dict[str, Any]:
    """Logging and the event loop for a worker process, then arq's options for it."""
    configure_logging()
    if not settings.log_each_job:
        skip_job_trace()
    _use_uvloop()
    return build_worker_settings(settings)


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        return prepare_worker(Settings())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _use_uvloop() -> None:
    """uvloop cuts the worker's CPU per job; arq creates its loop right after this."""
    try:
        import uvloop
    except ImportError:  # not on this platform: the default loop works, only slower
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


__all__ = ["build_worker_settings", "on_shutdown", "on_startup", "prepare_worker"]
