"""The composition root: ``arq worker.main.WorkerSettings`` (or ``jobs worker``).

``WorkerSettings`` is built when arq asks for it, from the environment of that moment:
nothing (settings, engine, pools) is created when this module is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq.cron import CronJob, cron

from domain.db import utcnow
from worker.config import Settings
from worker.connections import bound_reply_time, redis_settings
from worker.deps import DEPS_KEY, Deps, deps_of
from worker.jobs import JOBS, job
from worker.leases import LEASES_KEY, LeaseKeeper, head_depth, keeper_of
from worker.logs import configure_logging, skip_job_trace
from worker.runner import MAX_TRIES_KEY
from worker.serialization import job_deserializer, serialize

log = logging.getLogger("worker")


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    await bound_reply_time(ctx["redis"], settings.redis_socket_timeout)
    ctx[DEPS_KEY] = Deps.build(settings, ctx["redis"])
    keeper = LeaseKeeper(
        ctx["redis"],
        settings.queue_name,
        settings.lease_seconds,
        depth=head_depth(settings.max_jobs),
    )
    keeper.start()
    ctx[LEASES_KEY] = keeper
    log.info(
        "worker ready: %d jobs at a time, poll every %ss", settings.max_jobs, settings.poll_delay
    )


async def on_shutdown(ctx: dict[str, Any]) -> None:
    if LEASES_KEY in ctx:
        await keeper_of(ctx).stop()
    if DEPS_KEY in ctx:
        await deps_of(ctx).dispose()


async def on_job_start(ctx: dict[str, Any]) -> None:
    await keeper_of(ctx).acquire(ctx["job_id"])


async def on_job_end(ctx: dict[str, Any]) -> None:
    keeper_of(ctx).release(ctx["job_id"])


async def fail_stale_runs_cron(ctx: dict[str, Any]) -> dict[str, Any]:
    settings = deps_of(ctx).settings
    stale_job = _cron_target("fail_stale_runs")
    payload = {"idle_seconds": settings.stale_run_seconds, "now": _now()}
    return await stale_job(_one_try(ctx), payload)


async def prune_job_history_cron(ctx: dict[str, Any]) -> dict[str, Any]:
    settings = deps_of(ctx).settings
    prune = _cron_target("prune_job_history")
    return await prune(_one_try(ctx), {"keep_days": settings.job_history_days, "now": _now()})


def _one_try(ctx: dict[str, Any]) -> dict[str, Any]:
    # arq runs a cron job once (max_tries=1) and keeps its in-progress key for 60 s after,
    # so a Retry would never run: record the failure now and leave the work to the next tick.
    return {**ctx, MAX_TRIES_KEY: 1}


def _now() -> str:
    return utcnow().isoformat()


def _cron_target(name: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    return next(f.coroutine for f in JOBS if f.name == name)


def cron_jobs() -> list[CronJob]:
    # Every worker schedules these; the cron job id (name + scheduled time) is the same on
    # all of them, and the job ledger lets only one delivery of it commit.
    return [
        cron(fail_stale_runs_cron, name="cron:fail_stale_runs", second=0, timeout=60, unique=True),
        cron(
            prune_job_history_cron, name="cron:prune_job_history", minute=7, second=0, timeout=300
        ),
    ]


def build_worker_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker``, as arq reads them from ``WorkerSettings``."""
    return {
        "functions": list(JOBS),
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
        **overrides,
    }


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        settings = Settings()
        configure_logging()
        if not settings.log_each_job:
            skip_job_trace()
        _use_uvloop()
        return build_worker_settings(settings)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _use_uvloop() -> None:
    """uvloop cuts the worker's CPU per job; arq creates its loop right after this."""
    try:
        import asyncio

        import uvloop
    except ImportError:  # not on this platform: the default loop works, only slower
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


__all__ = ["build_worker_settings", "job", "on_shutdown", "on_startup"]
