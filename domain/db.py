"""Engine, session factory and the declarative base, built on demand (never at import); the
SQLSTATE of a driver error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import DateTime, MetaData, event, make_url, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# CURRENT_TIMESTAMP rather than now(): the same default text works on PostgreSQL and SQLite.
NOW = text("CURRENT_TIMESTAMP")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on every dialect.

    PostgreSQL keeps the zone itself; SQLite stores text without one, so values are
    normalised to UTC on the way in and marked UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    echo: bool = False,
    pre_ping: bool = True,
    overflow: int | None = None,
    pool_timeout: float = 30,
    statement_timeout: float | None = None,
) -> AsyncEngine:
    """One engine per process; the pool is sized to the worker's concurrency.

    ``pre_ping`` tests each connection as it leaves the pool: three round trips under
    asyncpg (BEGIN, a ping, ROLLBACK), skipped by callers that retry a lost connection.
    ``overflow``: connections opened beyond ``pool_size`` when all are busy, and closed as
    they are given back (default: half the pool, at least 2). ``pool_timeout``: seconds a
    caller waits for a connection before ``sqlalchemy.exc.TimeoutError``.
    ``statement_timeout``: seconds PostgreSQL lets any one statement of these connections
    run before it cancels it (SQLSTATE 57014); SQLite has no such limit.
    """
    if is_sqlite(url):
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": 30}, json_serializer=_json
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max(2, pool_size // 2) if overflow is None else overflow,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        pool_timeout=pool_timeout,
        json_serializer=_json,
        connect_args=_server_settings(url, statement_timeout),
    )


def _server_settings(url: str, statement_timeout: float | None) -> dict[str, Any]:
    """Sent as each connection opens, with the driver's startup message: no statement, so
    no round trip, and no session can forget them."""
    if statement_timeout is None:
        return {}
    milliseconds = str(max(1, round(statement_timeout * 1000)))  # 0 would mean no limit
    if make_url(url).get_driver_name() == "asyncpg":
        return {"server_settings": {"statement_timeout": milliseconds}}
    return {"options": f"-c statement_timeout={milliseconds}"}  # libpq's drivers


def _json(value: Any) -> str:
    # The job history writes a JSON result (and payload) with every job: orjson takes a
    # tenth of the stdlib's time for them.
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 driver only sends BEGIN before the first write, so a use case's reads
    # ran outside its transaction; _sqlite_begin_immediate sends BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys (and so cascades) unless asked, per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # LIKE is case-sensitive on PostgreSQL; prefix searches mean the same on both.
    cursor.execute("PRAGMA case_sensitive_like=ON")
    cursor.close()


def _sqlite_begin_immediate(connection: Connection) -> None:
    # SQLite ignores FOR UPDATE and has a single writer: taking the write lock as the
    # transaction starts is its row lock, so read-then-write use cases cannot lose updates.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a driver error, whether SQLAlchemy wrapped it or not."""
    orig = error.orig if isinstance(error, DBAPIError) else None
    for candidate in (error, orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str) and code:
            return code
    return None


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
