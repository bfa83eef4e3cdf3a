"""`dbjobs list` and `dbjobs failed` read the history over asyncpg alone, for the URLs
asyncpg reads as SQLAlchemy would; the statements' parameters become asyncpg's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.history_queries import recent_statement
from worker.cli.direct_reads import direct_dsn, positional


@pytest.mark.parametrize(
    ("url", "dsn"),
    [
        ("postgresql+asyncpg://u:p%40ss@db:5433/jobs", "postgresql://u:p%40ss@db:5433/jobs"),
        ("postgresql://u@[::1]/jobs", "postgresql://u@[::1]/jobs"),
        ("postgres://u@db/jobs", "postgresql://u@db/jobs"),
        # Options SQLAlchemy's dialect translates, another driver, no database named:
        # these go through the unit of work, as every other read does.
        ("postgresql://u@db/jobs?ssl=require", None),
        ("postgresql+psycopg://u@db/jobs", None),
        ("sqlite+aiosqlite:///demo.db", None),
        ("postgresql://u@db", None),
        ("postgresql://u@[db/jobs", None),
    ],
)
def test_only_a_plain_postgresql_url_is_read_directly(url: str, dsn: str | None):
    assert direct_dsn(url) == dsn


def test_a_parameter_used_twice_is_bound_once():
    cursor = (datetime(2026, 12, 1, tzinfo=UTC), "job-9")
    statement = recent_statement(state="failed", function=None, limit=20, before=cursor)
    sql, arguments = positional(statement)
    assert ":" not in sql
    assert sql.count("$1") == 2  # finished_at <= $1 AND (finished_at < $1 OR ...)
    assert arguments == [cursor[0], "job-9", "failed", 20]
