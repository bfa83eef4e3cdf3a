"""What the console builds once and every request borrows: the queue's pool and the
database engine. It is the ``worker.status.Sources`` of the read model and operations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from fastapi import Request

from domain.db import create_engine, create_session_factory
from domain.uow import SqlAlchemyUnitOfWork, UnitOfWork
from worker.config import Settings
from worker.connections import bound_reply_time, open_pool
from worker.readable import readable_job
from worker.web.budget import LIGHT_CONNECTIONS, ReadBudget

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from arq.jobs import Job
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Console:
    settings: Settings
    pool: ArqRedis
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    heavy_reads: ReadBudget

    @classmethod
    async def open(cls, settings: Settings) -> Console:
        pool = await open_pool(settings)
        await bound_reply_time(pool, settings.redis_socket_timeout)
        heavy = ReadBudget(settings.console_heavy_reads, settings.console_wait_seconds)
        engine = create_engine(
            settings.database_url.get_secret_value(),
            pool_size=LIGHT_CONNECTIONS + heavy.slots,
            pool_timeout=settings.console_wait_seconds,
            statement_timeout=settings.console_statement_timeout,
        )
        return cls(settings, pool, engine, create_session_factory(engine), heavy)

    async def close(self) -> None:
        await self.pool.aclose()
        await self.engine.dispose()

    async def queue(self) -> ArqRedis:
        return self.pool

    async def job(self, job_id: str) -> Job:
        return readable_job(job_id, self.pool, self.settings.queue_name)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[SqlAlchemyUnitOfWork]:
        async with SqlAlchemyUnitOfWork(self.session_factory) as uow:
            yield uow

    async def read(
        self,
        use_case: Callable[Concatenate[UnitOfWork, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """One read-side use case in a unit of work of its own: what most routes are."""
        async with self.unit_of_work() as uow:
            return await use_case(uow, *args, **kwargs)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console
