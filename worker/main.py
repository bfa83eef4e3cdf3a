"""The composition root: ``arq worker.main.WorkerSettings`` and ``dbjobs worker`` alike.

Both call ``prepare_worker``, so every setting behaves the same either way. Nothing
(settings, engine, pools) is created when this module is imported: ``WorkerSettings`` is
built when arq asks for it, from the environment of that moment.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

from arq.cron import CronJob, cron
from arq.worker import Function, func

from worker.bootstrap import SERVICES_KEY, Services, services_of
from worker.redis_connection import close_sentinels, redis_settings, ride_out_failovers
from worker.registry import JOBS, Job
from worker.runtime.claiming import use_claiming_worker
from worker.runtime.endings import arq_timeout, deliver
from worker.runtime.leases import LEASES_KEY, LeaseKeeper, head_depth, keeper_of
from worker.runtime.logs import configure_logging, skip_job_trace
from worker.runtime.outbox import OutboxDrainer
from worker.runtime.payload_versions import run_versioned
from worker.runtime.probes import start_health, stop_health
from worker.runtime.prometheus import job_meter
from worker.runtime.summary import TALLY, SummaryLogger
from worker.runtime.sweep import LostJobSweeper
from worker.runtime.watchdog import ReplyWatchdog
from worker.serialization import job_deserializer, serialize
from worker.settings import Settings

log = logging.getLogger("worker")
DRAINER_KEY = "history_drainer"  # in ctx: the task that drains the history outbox
SWEEPER_KEY = "history_sweeper"  # in ctx: the task that closes jobs left in limbo
WATCHDOG_KEY = "reply_watchdog"  # in ctx: bounds the wait for a Redis reply
SUMMARY_KEY = "job_summary"  # in ctx: logs the jobs' summary line every period


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    await ride_out_failovers(ctx["redis"], redis_settings(settings))  # arq's own pool
    watchdog = ReplyWatchdog(ctx["redis"], settings.redis_socket_timeout)
    await watchdog.start()
    ctx[WATCHDOG_KEY] = watchdog
    ctx[SERVICES_KEY] = Services.for_worker(settings, ctx["redis"])
    keeper = LeaseKeeper(
        ctx["redis"],
        settings.queue_name,
        settings.lease_seconds,
        depth=head_depth(settings.max_jobs),
        holder=services_of(ctx).worker_id,
    )
    keeper.start()
    ctx[LEASES_KEY] = keeper
    drainer = OutboxDrainer(services_of(ctx))
    drainer.start()
    ctx[DRAINER_KEY] = drainer
    TALLY.slow_seconds = settings.log_slow_seconds
    summary = SummaryLogger(TALLY, settings.log_summary_seconds)
    summary.start()
    ctx[SUMMARY_KEY] = summary
    sweeper = LostJobSweeper(services_of(ctx))
    sweeper.start()
    ctx[SWEEPER_KEY] = sweeper
    await start_health(ctx)
    log.info(
        "worker ready: %d jobs at a time, poll every %ss", settings.max_jobs, settings.poll_delay
    )


async def on_shutdown(ctx: dict[str, Any]) -> None:
    await stop_health(ctx)
    for key in (SUMMARY_KEY, DRAINER_KEY, SWEEPER_KEY):
        if key in ctx:
            await ctx[key].stop()
    if LEASES_KEY in ctx:
        await keeper_of(ctx).stop()
    if SERVICES_KEY in ctx:
        await services_of(ctx).close()
    if WATCHDOG_KEY in ctx:
        await ctx[WATCHDOG_KEY].stop()
    await close_sentinels(ctx["redis"])  # arq closes the pool itself


async def on_job_start(ctx: dict[str, Any]) -> None:
    keeper_of(ctx).acquire(ctx["job_id"])


async def on_job_end(ctx: dict[str, Any]) -> None:
    keeper_of(ctx).release(ctx["job_id"])


def arq_function(job: Job[Any]) -> Function:
    """``job`` as arq runs it: every delivery through ``run_job``, its payload at this
    worker's version of the job first (``run_versioned``)."""
    meter = job_meter(job.name)

    async def adapter(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return await meter.measure(run_versioned(ctx, job, args, kwargs), ctx.get("job_id"))

    adapter.__name__ = adapter.__qualname__ = job.name
    adapter.__doc__ = job.schema.__doc__
    return func(adapter, name=job.name, timeout=arq_timeout(job), max_tries=job.max_tries)


def cron_job(job: Job[Any]) -> CronJob:
    """``job`` on its schedule. Every worker schedules it; the tick's job id (name + time)
    is the same on all of them, and the job ledger lets only one delivery commit."""
    assert job.cron is not None
    meter = job_meter(job.name)

    async def tick(ctx: dict[str, Any]) -> dict[str, Any]:
        # arq runs a cron job once and keeps its in-progress key for 60 s after, so a Retry
        # would never run: the failure is recorded now and the next tick does the work.
        return await meter.measure(deliver(ctx, job, max_tries=1), ctx.get("job_id"))

    tick.__name__ = tick.__qualname__ = job.cron_name
    schedule = job.cron
    return cron(
        tick,
        name=job.cron_name,
        second=schedule.second,
        minute=schedule.minute,
        timeout=arq_timeout(job),
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
        # arq's own health key (``arq --check``); dbjobs reads each worker's heartbeat.
        "health_check_interval": 60,
        "allow_abort_jobs": settings.abort_running_jobs,
        "log_results": settings.log_each_job,  # off: no repr of each result for a dropped line
        **overrides,
    }


def prepare_worker(settings: Settings) -> dict[str, Any]:
    """Logging and the event loop for a worker process, then arq's options for it."""
    configure_logging()
    if not settings.log_each_job:
        skip_job_trace()
    _use_uvloop()
    use_claiming_worker()
    return build_worker_settings(settings, on_startup=on_process_startup)


async def on_process_startup(ctx: dict[str, Any]) -> None:
    """``on_startup`` in a worker process of its own (not a test's worker), then what it
    built is left out of the cyclic garbage collector's full passes (``gc.freeze``).

    A full pass walks every object the GC tracks, in the event loop's thread: over the
    90,000 that start-up leaves (modules, pools, the ORM's mappings) it took 46-57 ms of
    CPU, 100-270 ms under load, and an interactive job waited for it. Frozen, they are never
    collected as cycles: garbage is collected first, and they live as long as the process.
    """
    await on_startup(ctx)
    gc.collect()
    gc.freeze()


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
