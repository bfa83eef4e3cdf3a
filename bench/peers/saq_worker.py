"""SAQ: ``saq bench.peers.saq_worker.settings``.

SAQ's defaults (Redis queue ``default``, BLMOVE dequeue, no polling) with ``concurrency``
50; uvloop set before SAQ creates its loop (``saq.worker.start`` calls
``asyncio.new_event_loop()``).
"""

from __future__ import annotations

import os
from typing import Any

from saq import Queue

from bench.peers.job import CONCURRENCY, Database, use_uvloop


async def startup(ctx: dict[str, Any]) -> None:
    ctx["db"] = Database()
    print("worker ready", flush=True)


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["db"].dispose()


async def insert_metric(ctx: dict[str, Any], *, run_id: int, step: int) -> None:
    await ctx["db"].insert_metric(run_id, step)


def queue(url: str | None = None) -> Queue:
    return Queue.from_url(url or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))


use_uvloop()

settings = {
    "queue": queue(),
    "functions": [insert_metric],
    "concurrency": CONCURRENCY,
    "startup": startup,
    "shutdown": shutdown,
}
