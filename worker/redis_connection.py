"""Where and how to reach Redis, for every process: arq's connection settings read from
``REDIS_URL`` (one server, or the primary Sentinel names), with our retries and TLS, and
what a Sentinel pool needs beyond what arq gives it: patience that asks the sentinels
again, and its connections to the sentinels closed with it. ``worker.bootstrap`` opens
the pools.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arq.connections import ArqRedis, RedisSettings

    from worker.settings import Settings


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
