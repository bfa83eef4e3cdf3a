"""A producer as the README documents it: JSON both ways, the worker's queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from worker.config import Settings
from worker.serialization import deserialize, serialize


@asynccontextmanager
async def arq_client(redis_url: str) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=Settings().queue_name,
    )
    try:
        yield pool
    finally:
        await pool.aclose()
