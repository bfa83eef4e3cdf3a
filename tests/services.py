"""Real PostgreSQL and Redis for the suite: a database and a Redis keyspace of its own.

The suite creates ``dbjobs_test_<random>`` on the server at ``TEST_POSTGRES_URL`` (an
admin URL, default ``postgresql://postgres@127.0.0.1:5432/postgres``) and drops it at the
end; it never touches a database it did not create. For Redis it takes an empty logical
database on ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379``), marks it, and
flushes only that one at the end.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis.asyncio as aioredis

from worker import schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
OWNER_KEY = "dbjobs:test-suite:owner"


def database_url(name: str, *, admin_url: str = ADMIN_URL, driver: str = "asyncpg") -> str:
    parts = urlsplit(admin_url)
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return urlunsplit((scheme, parts.netloc, f"/{name}", parts.query, ""))


async def create_database(prefix: str = "dbjobs_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name


async def drop_database(name: str) -> None:
    if not name.startswith("dbjobs_test"):
        raise ValueError(f"refusing to drop {name!r}: not created by the test suite")
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def migrate(url: str, revision: str = "head") -> None:
    schema.upgrade(url, revision)


@dataclass
class RedisSpace:
    url: str
    db: int


async def claim_redis_db(base_url: str = REDIS_BASE_URL) -> RedisSpace:
    """An empty logical database, marked as ours; never one holding someone's keys."""
    marker = uuid.uuid4().hex
    for db in range(15, 0, -1):
        url = f"{base_url.rstrip('/')}/{db}"
        client = aioredis.from_url(url)
        try:
            if await client.dbsize() == 0 and await client.set(OWNER_KEY, marker, nx=True):
                return RedisSpace(url=url, db=db)
        finally:
            await client.aclose()
    raise RuntimeError("no empty Redis logical database (1-15) left for the test suite")


async def release_redis_db(space: RedisSpace) -> None:
    client = aioredis.from_url(space.url)
    try:
        if await client.exists(OWNER_KEY):
            await client.flushdb()
    finally:
        await client.aclose()


async def reset_redis_db(space: RedisSpace) -> None:
    """Empty the suite's own Redis database between tests, keeping it marked as ours."""
    client = aioredis.from_url(space.url)
    try:
        marker = await client.get(OWNER_KEY)
        if marker is None:
            raise RuntimeError(f"Redis db {space.db} is no longer marked as the suite's")
        await client.flushdb()
        await client.set(OWNER_KEY, marker)
    finally:
        await client.aclose()
