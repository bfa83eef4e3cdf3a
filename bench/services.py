"""A PostgreSQL database and a Redis logical database of the bench's own, removed at the end.

The admin URLs come from ``BENCH_POSTGRES_URL`` and ``BENCH_REDIS_URL`` (defaults: the local
services). The bench drops only the database it created and flushes only the Redis
database it marked as its own.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis.asyncio as aioredis

from worker import schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
DATABASE_PREFIX = "dbjobs_bench_"
OWNER_KEY = "dbjobs:bench:owner"
TABLES = (
    "metrics, runs, experiments, profiles, profile_generation_chunks, "
    "profile_generations, job_records"
)


@dataclass(frozen=True)
class BenchServices:
    database: str
    redis_url: str
    redis_marker: str

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL (asyncpg driver) of the bench database."""
        return _url_for(self.database, "postgresql+asyncpg")

    @property
    def dsn(self) -> str:
        """Plain libpq URL of the bench database, for raw asyncpg."""
        return _url_for(self.database, "postgresql")


def _url_for(database: str, scheme: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit((scheme, parts.netloc, f"/{database}", parts.query, ""))


async def _create_database() -> str:
    name = f"{DATABASE_PREFIX}{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name


async def _drop_database(name: str) -> None:
    if not name.startswith(DATABASE_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not created by the bench")
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _claim_redis_db() -> tuple[str, str]:
    """An empty logical database, marked as the bench's; scanned upwards (the tests go down)."""
    marker = uuid.uuid4().hex
    for db in range(1, 16):
        url = f"{REDIS_BASE_URL.rstrip('/')}/{db}"
        client = aioredis.from_url(url)
        try:
            if await client.dbsize() == 0 and await client.set(OWNER_KEY, marker, nx=True):
                return url, marker
        finally:
            await client.aclose()
    raise RuntimeError("no empty Redis logical database (1-15) left for the bench")


async def _release_redis_db(url: str, marker: str) -> None:
    client = aioredis.from_url(url)
    try:
        if await client.get(OWNER_KEY) == marker.encode():
            await client.flushdb()
    finally:
        await client.aclose()


async def reset_redis(services: BenchServices) -> None:
    """Empty the bench's Redis database between runs, keeping it marked as the bench's."""
    client = aioredis.from_url(services.redis_url)
    try:
        if await client.get(OWNER_KEY) != services.redis_marker.encode():
            raise RuntimeError("the bench's Redis database is no longer marked as its own")
        await client.flushdb()
        await client.set(OWNER_KEY, services.redis_marker)
    finally:
        await client.aclose()


async def truncate_tables(services: BenchServices) -> None:
    connection = await asyncpg.connect(services.dsn)
    try:
        await connection.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


@contextmanager
def bench_services() -> Iterator[BenchServices]:
    """Create, migrate, hand over, and always remove the bench's database and Redis space."""
    name = asyncio.run(_create_database())
    try:
        schema.upgrade(_url_for(name, "postgresql+asyncpg"))
        redis_url, marker = asyncio.run(_claim_redis_db())
        try:
            yield BenchServices(database=name, redis_url=redis_url, redis_marker=marker)
        finally:
            asyncio.run(_release_redis_db(redis_url, marker))
    finally:
        asyncio.run(_drop_database(name))
