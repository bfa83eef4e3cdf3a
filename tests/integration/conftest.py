"""Each test that asks for a database runs twice: on PostgreSQL and on SQLite.

``engine`` is parametrized over both (ids ``postgresql`` and ``sqlite``), and
``session_factory`` and ``uow_factory`` follow it, so one test states a behaviour both
databases must have. The PostgreSQL side is the suite's database with its tables
emptied; the SQLite side is a file of the test's own, copied from a template migrated
once per session by the Alembic migrations (never ``create_all``).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.db import create_engine, create_session_factory
from tests.support.db import DATABASES, StatementLog, sqlite_url
from worker.testing import scratch

ENGINE_FIXTURES = {"postgresql": "emptied_pg_engine", "sqlite": "sqlite_engine"}


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    scratch.migrate(sqlite_url(path))
    return path


@pytest.fixture
def sqlite_database(sqlite_template: Path, tmp_path: Path) -> str:
    """The URL of this test's own migrated SQLite file."""
    path = tmp_path / "test.db"
    shutil.copyfile(sqlite_template, path)
    return sqlite_url(path)


@pytest.fixture
async def sqlite_engine(sqlite_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sqlite_database)
    yield engine
    await engine.dispose()


@pytest.fixture(params=DATABASES)
def engine(request: pytest.FixtureRequest) -> AsyncEngine:
    """A migrated database with empty tables: PostgreSQL's or SQLite's, by the parameter."""
    found: AsyncEngine = request.getfixturevalue(ENGINE_FIXTURES[request.param])
    return found


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[StatementLog]:
    """Every SQL statement the engine sends while the test runs."""
    log = StatementLog()

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        log.sql.append(sql)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield log
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
