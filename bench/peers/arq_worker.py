"""Plain arq 0.28: ``arq bench.peers.arq_worker.WorkerSettings``.

arq's defaults (pickle, results kept 1 h) with our worker's concurrency and poll delay
(``max_jobs=50``, ``poll_delay=0.01``; arq's own default poll is 0.5 s), uvloop set
before arq creates its loop as our worker does.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from arq.connections import RedisSettings

from bench.peers.job import CONCURRENCY, Database, use_uvloop


async def startup(ctx: dict[str, Any]) -> None:
    ctx["db"] = Database()
    print("worker ready", flush=True)


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["db"].dispose()


async def insert_metric(ctx: dict[str, Any], run_id: int, step: int) -> None:
    await ctx["db"].insert_metric(run_id, step)


use_uvloop()


class WorkerSettings:
    functions: ClassVar = [insert_metric]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    max_jobs = CONCURRENCY
    poll_delay = 0.01
