"""Real PostgreSQL and Redis of one's own: a scratch database and a Redis logical database.

A development tool, shared by the test suite and the bench; the worker never uses it.
The suite creates ``dbjobs_test_<random>`` on the server at ``TEST_POSTGRES_URL`` (an
admin URL, default ``postgresql://postgres@127.0.0.1:5432/postgres``) and drops it at the
end; it never touches a database it did not create. For Redis it takes an empty logical
database on ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379``), marks it, and
flushes only that one at the end. The bench (``bench/services.py``) does the same under
its own ``Owner``, through the same code.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import redis.asyncio as aioredis

from domain.models import Profile
from worker.testing import migrate as schema

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Every table of the models' shared metadata, children first: what the suite and the bench
# empty (TABLES, for a TRUNCATE).
TABLE_NAMES = tuple(table.name for table in reversed(Profile.metadata.sorted_tables))
TABLES = ", ".join(TABLE_NAMES)


@dataclass(frozen=True)
class Owner:
    """Who makes scratch services: the names it marks them with, the servers it uses."""

    name: str  # in error messages
    database_prefix: str  # a database is dropped only if its name starts with this
    redis_owner_key: str  # marks a Redis logical database as claimed
    redis_dbs: Sequence[int]  # the logical databases to try, in order
    admin_url: str = ADMIN_URL
    redis_base_url: str = REDIS_BASE_URL


SUITE = Owner("the test suite", "dbjobs_test", "dbjobs:test-suite:owner", range(15, 0, -1))


def database_url(name: str, *, admin_url: str = ADMIN_URL, driver: str = "asyncpg") -> str:
    parts = urlsplit(admin_url)
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return urlunsplit((scheme, parts.netloc, f"/{name}", parts.query, ""))


async def create_database(owner: Owner = SUITE) -> str:
    name = f"{owner.database_prefix}_{uuid.uuid4().hex[:10]}"
    await _admin(owner, f'CREATE DATABASE "{name}"')
    return name


async def drop_database(name: str, owner: Owner = SUITE) -> None:
    if not name.startswith(owner.database_prefix):
        raise ValueError(f"refusing to drop {name!r}: not created by {owner.name}")
    await _admin(owner, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(owner: Owner, statement: str) -> None:
    connection = await asyncpg.connect(owner.admin_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def migrate(url: str, revision: str = "head") -> None:
    schema.upgrade(url, revision)


@dataclass(frozen=True)
class RedisSpace:
    url: str
    db: int
    owner_key: str
    marker: str  # the owner key's value: this claim's, and no one else's


async def claim_redis_db(owner: Owner = SUITE) -> RedisSpace:
    """An empty logical database, marked as ours; never one holding someone's keys."""
    marker, key = uuid.uuid4().hex, owner.redis_owner_key
    for db in owner.redis_dbs:
        url = f"{owner.redis_base_url.rstrip('/')}/{db}"
        client: aioredis.Redis = aioredis.Redis.from_url(url)
        try:
            if await client.dbsize() == 0 and await client.set(key, marker, nx=True):
                return RedisSpace(url, db, key, marker)
        finally:
            await client.aclose()
    raise RuntimeError(f"no empty Redis logical database left for {owner.name}")


async def release_redis_db(space: RedisSpace) -> None:
    client: aioredis.Redis = aioredis.Redis.from_url(space.url)
    try:
        if await client.get(space.owner_key) == space.marker.encode():
            await client.flushdb()
    finally:
        await client.aclose()


async def reset_redis_db(space: RedisSpace) -> None:
    """Empty a claimed Redis database between tests or runs, keeping it marked as claimed."""
    client: aioredis.Redis = aioredis.Redis.from_url(space.url)
    try:
        async with client.pipeline(transaction=True) as pipe:
            await pipe.watch(space.owner_key)
            if await pipe.get(space.owner_key) != space.marker.encode():
                raise RuntimeError(f"Redis db {space.db} is no longer marked as claimed by us")
            # One transaction: between a bare FLUSHDB and SET the database would look
            # empty and unclaimed, and another run could claim it.
            pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            pipe.flushdb()
            pipe.set(space.owner_key, space.marker)
            await pipe.execute()
    finally:
        await client.aclose()
