"""A PostgreSQL database and a Redis logical database of the bench's own, removed at the end.

The admin URLs come from ``BENCH_POSTGRES_URL`` and ``BENCH_REDIS_URL`` (defaults: the local
services). The bench drops only the database it created and flushes only the Redis
database it marked as its own, with ``worker.testing.scratch``, the test suite's code for them too.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg

from worker.testing.scratch import (
    TABLES,
    Owner,
    RedisSpace,
    claim_redis_db,
    create_database,
    database_url,
    drop_database,
    migrate,
    release_redis_db,
    reset_redis_db,
)

# Scanned upwards: the test suite takes Redis databases from 15 down.
BENCH = Owner(
    "the bench",
    "dbjobs_bench",
    "dbjobs:bench:owner",
    range(1, 16),
    admin_url=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    redis_base_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379"),
)

__all__ = ["BenchServices", "bench_services", "reset_redis", "truncate_tables"]


@dataclass(frozen=True)
class BenchServices:
    database: str
    redis: RedisSpace

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL (asyncpg driver) of the bench database."""
        return database_url(self.database, admin_url=BENCH.admin_url)

    @property
    def dsn(self) -> str:
        """Plain libpq URL of the bench database, for raw asyncpg."""
        return database_url(self.database, admin_url=BENCH.admin_url, driver="")


async def reset_redis(services: BenchServices) -> None:
    """Empty the bench's Redis database between runs, keeping it marked as the bench's."""
    await reset_redis_db(services.redis)


async def truncate_tables(services: BenchServices) -> None:
    connection = await asyncpg.connect(services.dsn)
    try:
        await connection.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


@contextmanager
def bench_services() -> Iterator[BenchServices]:
    """Create, migrate, hand over, and always remove the bench's database and Redis space."""
    name = asyncio.run(create_database(BENCH))
    try:
        migrate(database_url(name, admin_url=BENCH.admin_url))
        redis = asyncio.run(claim_redis_db(BENCH))
        try:
            yield BenchServices(database=name, redis=redis)
        finally:
            asyncio.run(release_redis_db(redis))
    finally:
        asyncio.run(drop_database(name, BENCH))
