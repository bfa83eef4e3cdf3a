"""SQLite fixtures: a freshly migrated database file per test, no server needed.

The schema comes from the Alembic migrations (never ``create_all``): it is migrated once
per session into a template file, which each test gets a copy of.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.db import create_engine, create_session_factory
from domain.repositories import JobStamp
from domain.uow import SqlAlchemyUnitOfWork
from tests.sqlite.helpers import UowFactory, sqlite_url
from worker import scratch


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    scratch.migrate(sqlite_url(path))
    return path


@pytest.fixture
def sqlite_database(migrated_template: Path, tmp_path: Path) -> str:
    """The URL of this test's own migrated SQLite file."""
    path = tmp_path / "test.db"
    shutil.copyfile(migrated_template, path)
    return sqlite_url(path)


@pytest.fixture
async def sqlite_engine(sqlite_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sqlite_database)
    yield engine
    await engine.dispose()


@pytest.fixture
def sqlite_session_factory(sqlite_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(sqlite_engine)


@pytest.fixture
def sqlite_uow(sqlite_session_factory: async_sessionmaker[AsyncSession]) -> UowFactory:
    def make(job: JobStamp | None = None) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(sqlite_session_factory, job)

    return make
