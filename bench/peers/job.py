"""The one-row job every system runs, written the way a user of any of them would write it.

One metric row, ``ON CONFLICT DO NOTHING``, in its own transaction, through SQLAlchemy 2
(async) and asyncpg: BEGIN, INSERT, COMMIT. The pool is sized like our worker's
(``JOBS_DB_POOL_SIZE=10``, no overflow), so only the queue around the job differs: with
an overflow of 5, 50 jobs at a time opened and closed 121 sessions in 8,000 jobs, each a
new backend, whose CPU the bench could not count.
"""

from __future__ import annotations

import asyncio
import os

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from domain.models import Metric

CONCURRENCY = 50  # jobs at a time, every system (our JOBS_MAX_JOBS default)
NAME = "loss"
TASK = "insert_metric"  # the job's name in every system
DRAMATIQ_QUEUE = "default"


def use_uvloop() -> None:
    """Before the system creates its loop: what our worker does for arq."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def open_engine(url: str | None = None) -> AsyncEngine:
    return create_async_engine(url or os.environ["DATABASE_URL"], pool_size=10, max_overflow=0)


def value_of(step: int) -> float:
    return 1.0 / (step + 1)


async def insert_metric(sessions: async_sessionmaker, run_id: int, step: int) -> None:
    statement = insert(Metric).values(run_id=run_id, name=NAME, step=step, value=value_of(step))
    async with sessions.begin() as session:
        await session.execute(statement.on_conflict_do_nothing())


class Database:
    """The engine and session factory a worker opens at startup and disposes at shutdown."""

    def __init__(self, url: str | None = None) -> None:
        self.engine = open_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def insert_metric(self, run_id: int, step: int) -> None:
        await insert_metric(self.sessions, run_id, step)

    async def dispose(self) -> None:
        await self.engine.dispose()
