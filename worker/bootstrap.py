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
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypedDict, TypeVar

from worker.settings import Settings

if TYPE_CHECKING:
    from arq.connections import ArqRedis, RedisSettings
    from arq.jobs import Deserializer, Job, Serializer
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from domain.repositories import JobStamp
    from domain.uow import SqlAlchemyUnitOfWork, UnitOfWork

P = ParamSpec("P")
T = TypeVar("T")
SERVICES_KEY = "services"  # in arq's ctx: the worker's Services


def redis_settings(settings: Settings) -> RedisSettings:
    """Where and how to reach Redis, as arq reads ``REDIS_URL`` (or through Sentinel, for a
    ``redis+sentinel://`` URL), with our retries and TLS; its repr never shows the password."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    fields = _redis_address(settings)
    if settings.redis_ssl_ca_certs:
        fields.update(ssl=True, ssl_ca_certs=settings.redis_ssl_ca_certs)
    if settings.redis_ssl_certfile:
        fields.update(
            ssl_certfile=settings.redis_ssl_certfile, ssl_keyfile=settings.redis_ssl_keyfile
        )
    if fields["ssl"]:
        fields.update(ssl_cert_reqs=settings.redis_ssl_cert_reqs)
    # Each Redis command is retried on a lost connection with backoff 0.25, 0.5, 1, 2, 2 s...:
    # with the default 5 retries a worker rides out about 6 s of outage (a restart, a
    # failover, a dropped connection), then the error ends it with a non-zero exit status.
    backoff = ExponentialBackoff(cap=2.0, base=0.125)
    fields.update(
        conn_timeout=settings.redis_connect_timeout,
        conn_retries=settings.redis_connect_retries,
        retry=Retry(backoff, settings.redis_connect_retries),
        # OSError too: redis-py retries a refused reconnect only when told to.
        retry_on_error=[RedisConnectionError, RedisTimeoutError, OSError],
    )
    return _safe_settings_class()(**fields)


def _redis_address(settings: Settings) -> dict[str, Any]:
    from arq.connections import RedisSettings

    from worker.environment import sentinel_url

    url = settings.redis_url.get_secret_value()
    sentinel = sentinel_url(url)
    if sentinel is None:
        return {**RedisSettings.from_dsn(url).__dict__}
    if settings.redis_ssl_ca_certs or settings.redis_ssl_certfile:
        # arq hands Sentinel only ``ssl``, and redis-py asks the sentinels in plain text.
        raise ValueError("TLS through Sentinel is not supported (JOBS_REDIS_SSL_* is set)")
    address = RedisSettings(
        host=list(sentinel.sentinels),
        sentinel=True,
        sentinel_master=sentinel.master,
        database=sentinel.database,
        username=sentinel.username,
        password=sentinel.password,
    )
    return {**address.__dict__}


async def ride_out_failovers(redis: ArqRedis, target: RedisSettings) -> None:
    """Give a Sentinel pool the patience ``target`` asks for; call it while no connection
    is in use.

    arq hands Sentinel only the credentials and the database: without this, a command that
    meets the failover (the old primary gone, or demoted to a read-only replica) fails at
    once instead of asking the sentinels again, with backoff, for the new primary. The
    existing connections are dropped, as redis-py builds each new one from these options.
    """
    if not target.sentinel:
        return  # arq passed them all already
    pool = redis.connection_pool
    pool.connection_class = _asking_sentinels_each_try()
    pool.connection_kwargs.update(
        socket_connect_timeout=target.conn_timeout,
        retry=target.retry,
        retry_on_error=target.retry_on_error,
    )
    await pool.disconnect()
    pool.reset()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated


@functools.cache
def _safe_settings_class() -> type[RedisSettings]:
    """arq's ``RedisSettings`` prints the password in its repr; this one never does. Built
    on first use: the CLI's read commands never load arq."""
    from arq.connections import RedisSettings

    class SafeRedisSettings(RedisSettings):
        def __repr__(self) -> str:
            shown = {k: ("***" if k == "password" and v else v) for k, v in self.__dict__.items()}
            return "RedisSettings({})".format(", ".join(f"{k}={v!r}" for k, v in shown.items()))

    return SafeRedisSettings


async def close_sentinels(redis: ArqRedis) -> None:
    """Close the connections a Sentinel pool keeps to the sentinels themselves, which
    closing the pool leaves open; nothing for a pool on one server."""
    manager = getattr(redis.connection_pool, "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


@functools.cache
def _asking_sentinels_each_try() -> type[Any]:
    """redis-py's connection to a Sentinel-named primary, asking the sentinels again on
    each try of its patient reconnection.

    redis-py's own retries its reconnection to the address the sentinels named first: to
    the dead primary, for the whole patience (16 s with 10 retries), while the sentinels
    had named the new one 2 s after the crash. Here one try per address is made; the retry
    around it asks the sentinels again.
    """
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import SentinelManagedConnection
    from redis.backoff import NoBackoff

    class AsksSentinelsEachTry(SentinelManagedConnection):
        async def connect_to(self, address: tuple[str, int]) -> None:
            patient, self.retry = self.retry, Retry(NoBackoff(), 0)
            try:
                await super().connect_to(address)  # type: ignore[no-untyped-call]
            finally:
                self.retry = patient

    return AsksSentinelsEachTry


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
    pool = await create_pool(target, **queue_options(settings))
    await ride_out_failovers(pool, target)
    return pool


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
    return f"{socket.gethostname()}:{os.getpid()}"


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
        from worker.serialization import readable_job

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
