"""One bootstrap: the Redis pool and the database's engine and sessions, built the same way
for the worker, the CLI and the console.

``Services`` is what a process opens once and every task borrows, from settings read and
checked by ``worker.environment``. The worker builds it in ``on_startup`` around the pool
arq made; the CLI and the console open theirs. Nothing is built at import, and SQLAlchemy
loads only when the database is first used: a producer that only enqueues never pays for
it (0.4 s of imports).
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypedDict, TypeVar

from worker.redis_connection import close_sentinels, ride_out_failovers
from worker.redis_connection import redis_settings as redis_settings  # where it always was
from worker.settings import Settings

if TYPE_CHECKING:
    from arq.connections import ArqRedis, RedisSettings
    from arq.jobs import Deserializer, Job, Serializer
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from domain.history_queries import Statement
    from domain.repositories import JobStamp
    from domain.uow import SqlAlchemyUnitOfWork, UnitOfWork

P = ParamSpec("P")
T = TypeVar("T")
SERVICES_KEY = "services"  # in arq's ctx: the worker's Services


class QueueOptions(TypedDict):
    job_serializer: Serializer
    job_deserializer: Deserializer
    default_queue_name: str


def queue_options(settings: Settings) -> QueueOptions:
    """How a producer speaks to the workers: JSON both ways, on their queue."""
    from worker.serialization import deserialize, serialize

    return {
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "default_queue_name": settings.queue_name,
    }


async def open_pool(settings: Settings, redis: RedisSettings | None = None) -> ArqRedis:
    """A producer's pool on the workers' queue; ``redis`` replaces the connection settings
    derived from ``settings`` (a caller with its own patience, or a test's own server)."""
    from arq import create_pool

    target = redis or redis_settings(settings)
    pool = ringing(await create_pool(target, **queue_options(settings)))
    await ride_out_failovers(pool, target)
    return pool


def ringing(pool: ArqRedis) -> ArqRedis:
    """``pool``, whose ``enqueue_job`` now also rings the workers' doorbell."""
    pool.__class__ = _ringing_pool()  # arq builds the pool itself, and has no class option
    return pool


@functools.cache
def _ringing_pool() -> type[ArqRedis]:
    """arq's pool, whose ``enqueue_job`` also rings the doorbell (``worker.runtime.polling``):
    an idle worker blocks on it instead of polling, so a job enqueued through arq's own API
    (a program using ``open_pool``) is picked up at once, as ``worker.ops``'s enqueues are."""
    from arq.connections import ArqRedis

    class RingingPool(ArqRedis):
        async def enqueue_job(self, function: str, *args: Any, **kwargs: Any) -> Job | None:
            job = await super().enqueue_job(function, *args, **kwargs)
            if job is not None:
                await ring_doorbell(self, self.default_queue_name)
            return job

    return RingingPool


async def ring_doorbell(redis: ArqRedis, queue_name: str) -> None:
    """Wake an idle worker of ``queue_name`` (``worker.runtime.polling``): it claims what is
    ready, or learns when the first deferred job is due."""
    from worker.lanes import DOORBELL_TOKENS, doorbell_key

    bell = doorbell_key(queue_name)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lpush(bell, 1)
        pipe.ltrim(bell, 0, DOORBELL_TOKENS - 1)
        await pipe.execute()


async def bound_reply_time(redis: ArqRedis, seconds: float) -> None:
    """Give every connection of ``redis`` a reply timeout; call it while none is in use.

    For the CLI and the console: redis-py then runs each command as a task of its own,
    which a worker cannot afford (``worker.runtime.watchdog`` bounds its replies instead).

    arq's ``RedisSettings`` has no such setting, and arq creates the pool itself. redis-py
    builds each new connection from the pool's keyword arguments, so the existing ones are
    closed and dropped. A timed-out command counts as a lost connection.
    """
    pool = redis.connection_pool
    pool.connection_kwargs["socket_timeout"] = seconds
    await pool.disconnect()
    pool.reset()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated


def this_worker_id() -> str:
    """How this process is named in the history, its heartbeat and its leases."""
    return _named(os.getpid())


@functools.cache
def _named(pid: int) -> str:
    # Each claim asks (its lease's value): asking the system for the host's name each time
    # cost more than the rest of the claim's own Python.
    return f"{socket.gethostname()}:{pid}"


@dataclass(frozen=True)
class DatabasePool:
    """How many connections a process keeps to the database, and how it uses them."""

    size: int
    overflow: bool = True  # more when all are busy, closed as they come back
    pre_ping: bool = True  # test a connection as it leaves the pool
    wait_seconds: float = 30  # for a free connection, then a pool timeout
    statement_timeout: float | None = None  # seconds PostgreSQL gives any one statement


class Services:
    """The queue's pool and the database of one process, each opened on first use.

    ``redis`` is a pool someone else opened (arq's, in a worker): it is used as it is and
    left open. Otherwise ``queue()`` opens one with ``redis_target()`` and a bound on each
    reply.
    """

    def __init__(
        self, settings: Settings, database: DatabasePool, *, redis: ArqRedis | None = None
    ) -> None:
        self.settings = settings
        self.database = database
        self.worker_id = this_worker_id()  # names this process in the job history's tries
        self._redis = redis
        self._owns_redis = redis is None
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @classmethod
    def for_worker(cls, settings: Settings, redis: ArqRedis) -> Services:
        # No overflow: with more jobs than connections there is always one more waiting,
        # so an overflow connection was opened and closed again about every ten one-row
        # jobs, each a new session, TLS probe and statement cache.
        size = min(settings.db_pool_size, settings.max_jobs)
        database = DatabasePool(size, overflow=False, pre_ping=settings.db_pre_ping)
        return cls(settings, database, redis=redis)

    @property
    def redis(self) -> ArqRedis:
        """The queue's pool, once open (a worker's always is)."""
        if self._redis is None:
            raise RuntimeError("the queue is not open yet: await queue() first")
        return self._redis

    async def queue(self) -> ArqRedis:
        if self._redis is None:
            self._redis = await self.open_queue()
        return self._redis

    async def open_queue(self) -> ArqRedis:
        pool = await open_pool(self.settings, self.redis_target())
        await bound_reply_time(pool, self.settings.redis_socket_timeout)
        return pool

    def redis_target(self) -> RedisSettings:
        return redis_settings(self.settings)

    async def job(self, job_id: str) -> Job:
        """The job as arq reads it; data arq cannot read raises ``UnreadableData``."""
        from worker.arq_jobs import readable_job

        return readable_job(job_id, await self.queue(), self.settings.queue_name)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = self.new_engine()
        return self._engine

    def new_engine(self) -> AsyncEngine:
        from domain.db import create_engine

        database = self.database
        return create_engine(
            self.settings.database_url.get_secret_value(),
            pool_size=database.size,
            overflow=None if database.overflow else 0,
            pre_ping=database.pre_ping,
            pool_timeout=database.wait_seconds,
            statement_timeout=database.statement_timeout,
        )

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            from domain.db import create_session_factory

            self._sessions = create_session_factory(self.engine)
        return self._sessions

    def unit_of_work(
        self, job: JobStamp | None = None
    ) -> AbstractAsyncContextManager[SqlAlchemyUnitOfWork]:
        """A fresh unit of work (and so a fresh session) for one task."""
        from domain.uow import SqlAlchemyUnitOfWork

        return SqlAlchemyUnitOfWork(self.session_factory, job)

    async def read(
        self,
        use_case: Callable[Concatenate[UnitOfWork, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """One read-side use case in a unit of work of its own."""
        async with self.unit_of_work() as uow:
            return await use_case(uow, *args, **kwargs)

    async def read_rows(self, statement: Statement) -> Sequence[Mapping[str, Any]]:
        """A read of ``domain.history_queries``, in a unit of work of its own."""
        async with self.unit_of_work() as uow:
            return await uow.jobs.rows(statement)

    async def close(self) -> None:
        if self._redis is not None and self._owns_redis:
            await self._redis.aclose()
            await close_sentinels(self._redis)
        if self._engine is not None:
            await self._engine.dispose()


def services_of(ctx: dict[str, Any]) -> Services:
    services = ctx.get(SERVICES_KEY)
    if not isinstance(services, Services):
        raise RuntimeError("worker services missing: on_startup did not run")
    return services
