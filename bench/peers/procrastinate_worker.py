"""procrastinate 3: ``python -m bench.peers.procrastinate_worker``.

Its worker with ``concurrency=50`` and LISTEN/NOTIFY (the default), run under uvloop
(``App.run_worker`` would use ``asyncio.run`` with the default loop). Its psycopg pool
gets ``POOL_SIZE`` connections: psycopg_pool's default is 4, and procrastinate's docs
say short jobs want as many as the concurrency, plus one.
"""

from __future__ import annotations

import asyncio
import os

import uvloop
from procrastinate import App, PsycopgConnector

from bench.peers.job import CONCURRENCY, TASK, Database

POOL_SIZE = int(os.environ.get("BENCH_PROCRASTINATE_POOL", CONCURRENCY + 1))


def libpq_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def make_app(dsn: str, pool_size: int = POOL_SIZE) -> App:
    return App(connector=PsycopgConnector(conninfo=dsn, min_size=1, max_size=pool_size))


app = make_app(libpq_url(os.environ.get("DATABASE_URL", "postgresql://localhost/")))
database: Database | None = None


@app.task(name=TASK)
async def insert_metric(run_id: int, step: int) -> None:
    assert database is not None
    await database.insert_metric(run_id, step)


async def main() -> None:
    global database
    database = Database()
    try:
        async with app.open_async():
            print("worker ready", flush=True)
            await app.run_worker_async(concurrency=CONCURRENCY)
    finally:
        await database.dispose()


if __name__ == "__main__":
    asyncio.Runner(loop_factory=uvloop.new_event_loop).run(main())
