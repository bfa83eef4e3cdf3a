from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.db import create_engine, create_session_factory
from domain.repositories import JobStamp
from domain.uow import SqlAlchemyUnitOfWork
from tests.support import needs
from tests.support.db import MakeUow, empty_tables
from tests.support.servers import PG_BIN, REDIS_SERVER
from worker.testing import scratch


def pytest_itemcollected(item: pytest.Item) -> None:
    needs.mark(item)  # before -m selects


@pytest.hookimpl(trylast=True)  # after -k and -m deselect
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needs.check(config, items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    needs.skip_if_missing(item)  # before any fixture is set up


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    needs.summarize(terminalreporter)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A migrated PostgreSQL database of the suite's own; its asyncpg URL."""
    name = asyncio.run(scratch.create_database())
    url = scratch.database_url(name)
    try:
        scratch.migrate(url)
        yield url
    finally:
        asyncio.run(scratch.drop_database(name))


@pytest.fixture(scope="session")
def redis_space() -> Iterator[scratch.RedisSpace]:
    space = asyncio.run(scratch.claim_redis_db())
    try:
        yield space
    finally:
        asyncio.run(scratch.release_redis_db(space))


@pytest.fixture(scope="session")
def postgres_binaries() -> Path:
    """Where initdb and pg_ctl are; ask for it to start a PostgreSQL server of the test's own."""
    return PG_BIN


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    """The redis-server executable; ask for it to start a Redis server of the test's own."""
    return REDIS_SERVER


@pytest.fixture
async def redis(clean_redis: scratch.RedisSpace) -> AsyncIterator[ArqRedis]:
    """An arq pool on the suite's Redis database, emptied for this test."""
    pool = await create_pool(RedisSettings.from_dsn(clean_redis.url))
    yield pool
    await pool.aclose()


@pytest.fixture
async def clean_redis(redis_space: scratch.RedisSpace) -> scratch.RedisSpace:
    """The suite's Redis database, emptied for this test."""
    await scratch.reset_redis_db(redis_space)
    return redis_space


@pytest.fixture(scope="session")
async def pg_engine(pg_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_database, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def emptied_pg_engine(pg_engine: AsyncEngine) -> AsyncEngine:
    """The suite's PostgreSQL database, its tables emptied for this test."""
    async with pg_engine.begin() as connection:
        await empty_tables(connection, scratch.TABLE_NAMES)
    return pg_engine


@pytest.fixture
def session_factory(emptied_pg_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the suite's PostgreSQL database, its tables emptied (tests/integration
    overrides it to run each test on SQLite as well)."""
    return create_session_factory(emptied_pg_engine)


@pytest.fixture
def uow_factory(session_factory: async_sessionmaker[AsyncSession]) -> MakeUow:
    def make(job: JobStamp | None = None) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(session_factory, job)

    return make
