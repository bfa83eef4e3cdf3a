"""A producer as the README documents it: JSON both ways, the worker's queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq.connections import ArqRedis, RedisSettings

from worker.bootstrap import open_pool
from worker.settings import Settings


@asynccontextmanager
async def arq_client(redis_url: str) -> AsyncIterator[ArqRedis]:
    pool = await open_pool(Settings(), RedisSettings.from_dsn(redis_url))
    try:
        yield pool
    finally:
        await pool.aclose()
