"""What a worker process builds once at startup and every job borrows."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.db import create_engine, create_session_factory
from domain.repositories import JobStamp
from domain.uow import SqlAlchemyUnitOfWork
from worker.config import Settings

DEPS_KEY = "deps"


@dataclass
class Deps:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    # Names this process in the job history's tries.
    worker_id: str = field(default_factory=lambda: this_worker_id())

    @classmethod
    def build(cls, settings: Settings, redis: ArqRedis) -> Deps:
        url = settings.database_url.get_secret_value()
        engine = create_engine(
            url,
            pool_size=min(settings.db_pool_size, settings.max_jobs),
            pre_ping=settings.db_pre_ping,
            # None beyond the pool: with more jobs than connections there is always one
            # more waiting, so an overflow connection was opened and closed again about
            # every ten one-row jobs, each a new session, TLS probe and statement cache.
            overflow=0,
        )
        return cls(settings, engine, create_session_factory(engine), redis)

    def unit_of_work(self, job: JobStamp | None = None) -> SqlAlchemyUnitOfWork:
        """A fresh unit of work (and so a fresh session) for one task."""
        return SqlAlchemyUnitOfWork(self.session_factory, job)

    async def dispose(self) -> None:
        await self.engine.dispose()


def this_worker_id() -> str:
    """How this process is named in the history, its heartbeat and its leases."""
    return f"{socket.gethostname()}:{os.getpid()}"


def deps_of(ctx: dict[str, Any]) -> Deps:
    deps = ctx.get(DEPS_KEY)
    if not isinstance(deps, Deps):
        raise RuntimeError("worker dependencies missing: on_startup did not run")
    return deps
