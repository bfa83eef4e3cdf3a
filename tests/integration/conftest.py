from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.db import StatementLog


@pytest.fixture
def statements(pg_engine: AsyncEngine) -> Iterator[StatementLog]:
    """Every SQL statement the engine sends while the test runs."""
    log = StatementLog()

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        log.sql.append(sql)

    event.listen(pg_engine.sync_engine, "before_cursor_execute", record)
    try:
        yield log
    finally:
        event.remove(pg_engine.sync_engine, "before_cursor_execute", record)
