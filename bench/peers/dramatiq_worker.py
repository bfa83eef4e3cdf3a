"""dramatiq 2 with its Redis broker and AsyncIO middleware:
``dramatiq bench.peers.dramatiq_worker --processes 1 --threads 50``.

Default middleware and prefetch (twice the threads). An async actor runs on the one
event loop thread the AsyncIO middleware starts, while a worker thread waits for it: 50
threads is 50 jobs at a time. uvloop set before that thread creates its loop.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO

from bench.peers.job import DRAMATIQ_QUEUE, TASK, Database, use_uvloop


def broker(url: str | None = None) -> RedisBroker:
    redis = RedisBroker(url=url or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    redis.add_middleware(AsyncIO())
    return redis


use_uvloop()
dramatiq.set_broker(broker())
# Created here, used only on the event loop thread: asyncpg connects on first use there.
database = Database()


@dramatiq.actor(actor_name=TASK, queue_name=DRAMATIQ_QUEUE)
async def insert_metric(run_id: int, step: int) -> None:
    await database.insert_metric(run_id, step)
