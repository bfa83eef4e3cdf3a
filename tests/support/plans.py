"""EXPLAIN for tests: the statements an engine sends, and PostgreSQL's plans for them as
prepared statements, custom or generic (``plan_cache_mode``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

PLAN_MODES = ("force_custom_plan", "force_generic_plan")


@contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """The statements the engine sends inside the block, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_rest: Any) -> None:
        sent.append((sql, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def explain(session: AsyncSession, name: str, sql: str, parameters: Any) -> dict[str, Any]:
    """The plan of a prepared statement, as EXPLAIN EXECUTE shows it under plan_cache_mode."""
    connection = await session.connection()
    await connection.exec_driver_sql(f"PREPARE {name} AS {sql}")
    # EXECUTE takes its arguments as SQL, not as protocol parameters.
    arguments = f"({', '.join(map(literal, parameters))})" if parameters else ""
    result = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) EXECUTE {name}{arguments}")
    plan: dict[str, Any] = result.scalar_one()[0]["Plan"]
    await connection.exec_driver_sql(f"DEALLOCATE {name}")
    return plan


def literal(value: object) -> str:
    """A parameter as SQL; EXECUTE casts it to the type the prepared statement gave it."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | int | float):
        return str(value).upper() if isinstance(value, bool) else str(value)
    if isinstance(value, datetime):
        value = value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)
