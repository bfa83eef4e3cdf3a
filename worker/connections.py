"""How a worker or a producer connects to Redis: retries, TLS, and a repr without secrets.

Kept apart from ``worker.deps`` so that producers (the CLI) connect without importing
SQLAlchemy.
"""

from __future__ import annotations

from typing import TypedDict

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Deserializer, Serializer
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from worker.config import Settings
from worker.serialization import deserialize, serialize

# Each Redis command is retried on a lost connection with backoff 0.25, 0.5, 1, 2, 2 s...:
# with the default 5 retries a worker rides out about 6 s of outage (a restart, a
# failover, a dropped connection), then the error ends it with a non-zero exit status.
REDIS_RETRY_BACKOFF = ExponentialBackoff(cap=2.0, base=0.125)


class SafeRedisSettings(RedisSettings):
    """arq's ``RedisSettings`` prints the password in its repr; this one never does."""

    def __repr__(self) -> str:
        shown = {k: ("***" if k == "password" and v else v) for k, v in self.__dict__.items()}
        return "RedisSettings({})".format(", ".join(f"{k}={v!r}" for k, v in shown.items()))


def redis_settings(settings: Settings) -> SafeRedisSettings:
    base = RedisSettings.from_dsn(settings.redis_url.get_secret_value())
    fields = {**base.__dict__}
    if settings.redis_ssl_ca_certs:
        fields.update(ssl=True, ssl_ca_certs=settings.redis_ssl_ca_certs)
    if settings.redis_ssl_certfile:
        fields.update(
            ssl_certfile=settings.redis_ssl_certfile, ssl_keyfile=settings.redis_ssl_keyfile
        )
    if fields["ssl"]:
        fields.update(ssl_cert_reqs=settings.redis_ssl_cert_reqs)
    fields.update(
        conn_timeout=settings.redis_connect_timeout,
        conn_retries=settings.redis_connect_retries,
        retry=Retry(REDIS_RETRY_BACKOFF, settings.redis_connect_retries),
        # OSError too: redis-py retries a refused reconnect only when told to.
        retry_on_error=[RedisConnectionError, RedisTimeoutError, OSError],
    )
    return SafeRedisSettings(**fields)


class QueueOptions(TypedDict):
    job_serializer: Serializer
    job_deserializer: Deserializer
    default_queue_name: str


def queue_options(settings: Settings) -> QueueOptions:
    """How a producer speaks to the workers: JSON both ways, on their queue."""
    return {
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "default_queue_name": settings.queue_name,
    }


async def open_pool(settings: Settings, redis: RedisSettings | None = None) -> ArqRedis:
    """A producer's pool on the workers' queue; ``redis`` replaces the connection settings
    derived from ``settings`` (a caller with its own patience, or a test's own server)."""
    return await create_pool(redis or redis_settings(settings), **queue_options(settings))


async def bound_reply_time(redis: ArqRedis, seconds: float) -> None:
    """Give every connection of ``redis`` a reply timeout; call it while none is in use.

    For the CLI, one command at a time: redis-py then runs each command as a task of its
    own, which a worker cannot afford (``worker.watchdog`` bounds its replies instead).

    arq's ``RedisSettings`` has no such setting, and arq creates the pool itself. redis-py
    builds each new connection from the pool's keyword arguments, so the existing ones are
    closed and dropped. A timed-out command counts as a lost connection: it is retried,
    then it ends the worker.
    """
    pool = redis.connection_pool
    pool.connection_kwargs["socket_timeout"] = seconds
    await pool.disconnect()
    pool.reset()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
