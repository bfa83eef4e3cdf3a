from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.db import create_engine, create_session_factory
from domain.uow import SqlAlchemyUnitOfWork
from tests import services


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A migrated PostgreSQL database of the suite's own; its asyncpg URL."""
    name = asyncio.run(services.create_database())
    url = services.database_url(name)
    try:
        services.migrate(url)
        yield url
    finally:
        asyncio.run(services.drop_database(name))


@pytest.fixture(scope="session")
def redis_space() -> Iterator[services.RedisSpace]:
    space = asyncio.run(services.claim_redis_db())
    try:
        yield space
    finally:
        asyncio.run(services.release_redis_db(space))


@pytest.fixture
async def clean_redis(redis_space: services.RedisSpace) -> services.RedisSpace:
    """The suite's Redis database, emptied for this test."""
    await services.reset_redis_db(redis_space)
    return redis_space


@pytest.fixture(scope="session")
async def pg_engine(pg_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_database, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session_factory(pg_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Empty tables before each test that asks for the database."""
    async with pg_engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {services.TABLES} RESTART IDENTITY CASCADE"))
    return create_session_factory(pg_engine)


@pytest.fixture
def uow_factory(
    session_factory: async_sessionmaker[AsyncSession],
) -> type[SqlAlchemyUnitOfWork] | object:
    def make(job: object = None) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(session_factory, job)  # type: ignore[arg-type]

    return make
