"""Each worker's own liveness and readiness, and the background work that feeds them.

- Alive: its event loop goes round. The heartbeat task notes each round; a loop blocked by
  a job (or starved) stops noting, and a probe from another thread sees the silence.
- Ready: alive, started and not stopping, and Redis and PostgreSQL answered within the
  last few beats (each beat writes to Redis and pings PostgreSQL, both bounded).

The worker's exporter (``worker.runtime.exporter``) serves both as ``/healthz`` and ``/readyz``
from a thread of its own, so a stuck loop is reported rather than leaving the probe
hanging; ``dbjobs health`` reads every worker's heartbeat from Redis.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from time import monotonic
from types import FrameType
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from worker.bootstrap import services_of
from worker.ops.workers import LOST_AFTER_BEATS, READY
from worker.runtime.heartbeats import Heartbeat
from worker.runtime.leases import keeper_of

HEALTH_KEY = "health"  # in ctx: this worker's Health


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


class Health:
    def __init__(self, heartbeat: Heartbeat, probe_engine: AsyncEngine | None = None) -> None:
        self.heartbeat = heartbeat
        self.probe_engine = probe_engine
        self.window = heartbeat.every * LOST_AFTER_BEATS  # silence longer than this is death

    def liveness(self) -> Verdict:
        silent = monotonic() - self.heartbeat.ticked_at
        if silent > self.window:
            return Verdict(False, f"the event loop has not run for {silent:.1f}s")
        return Verdict(True, "alive")

    def readiness(self) -> Verdict:
        alive = self.liveness()
        if not alive.ok:
            return alive
        if self.heartbeat.state != READY:
            return Verdict(False, self.heartbeat.state)
        if not self._recent(self.heartbeat.written_at):
            return Verdict(False, "Redis has not taken a heartbeat lately")
        if not self._recent(self.heartbeat.database_at):
            return Verdict(False, "the database has not answered lately")
        return Verdict(True, "ready")

    def _recent(self, moment: float | None) -> bool:
        return moment is not None and monotonic() - moment <= self.window


async def start_health(ctx: dict[str, Any]) -> None:
    """The worker's heartbeat ("ready" from now on, "stopping" from its first signal) and,
    with ``JOBS_METRICS_PORT`` set, its exporter of metrics and probes."""
    from worker.runtime import exporter  # prometheus_client's HTTP server only where it serves

    services, keeper = services_of(ctx), keeper_of(ctx)
    # Its own connection per ping (no pool): a probe must not wait behind busy jobs for
    # a pooled connection, nor hold one of theirs.
    engine = create_async_engine(
        services.settings.database_url.get_secret_value(), poolclass=NullPool
    )

    async def ping() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    heartbeat = Heartbeat(
        services.redis,
        services.settings.queue_name,
        services.worker_id,
        services.settings.heartbeat_seconds,
        running=lambda: len(keeper.running),
        database=ping,
    )
    health = Health(heartbeat, engine)
    await heartbeat.start()
    ctx[HEALTH_KEY] = health
    _stopping_on_signals(heartbeat)
    exporter.start(ctx, health)


async def stop_health(ctx: dict[str, Any]) -> None:
    """Say "stopping", then leave the roster; the exporter answers until the end."""
    from worker.runtime import exporter

    health = ctx.get(HEALTH_KEY)
    if not isinstance(health, Health):
        return
    if _SignalWatch.heartbeat is health.heartbeat:
        _SignalWatch.heartbeat = None
    await health.heartbeat.stop()
    exporter.stop(ctx)
    if health.probe_engine is not None:
        await health.probe_engine.dispose()


class _SignalWatch:
    """Which heartbeat a SIGTERM or SIGINT marks as stopping; the handlers are set once per
    process (a test process starts many workers in turn)."""

    heartbeat: Heartbeat | None = None
    installed = False


def _stopping_on_signals(heartbeat: Heartbeat) -> None:
    """Say "stopping" the moment SIGTERM or SIGINT arrives, not once the running jobs end.

    arq handles these through ``loop.add_signal_handler``, which leaves a Python-level
    handler that does nothing and learns of the signal from the loop's wakeup fd, which the
    interpreter writes whatever that handler is. So a handler set here runs first and arq's
    still runs after it. It only flips a flag and wakes the heartbeat.
    """
    _SignalWatch.heartbeat = heartbeat
    if _SignalWatch.installed:
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def handler(number: int, frame: FrameType | None, previous: Any = previous) -> None:
            if _SignalWatch.heartbeat is not None:
                _SignalWatch.heartbeat.stopping()
            if callable(previous):
                previous(number, frame)

        try:
            signal.signal(signum, handler)
        except ValueError:  # not the main thread (a worker run inside a test): no signals
            return
    _SignalWatch.installed = True
