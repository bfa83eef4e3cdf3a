"""Small dialect-aware helpers shared by the repositories."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.db import Base


def dialect_of(session: AsyncSession) -> str:
    bind = session.get_bind()
    return bind.dialect.name


def insert_for(session: AsyncSession, model: type[Base]) -> Any:
    """An INSERT that supports ON CONFLICT on both PostgreSQL and SQLite."""
    return dialect_insert(dialect_of(session), model)


def dialect_insert(dialect: str, target: Any) -> Any:
    """``insert_for`` by dialect name, for statements built once and reused."""
    if dialect == "postgresql":
        return postgresql.insert(target)
    return sqlite.insert(target)


def violated_constraint(error: IntegrityError) -> str:
    """The name of the constraint (PostgreSQL) or the columns (SQLite) an insert broke."""
    cause = getattr(error.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None) or getattr(error.orig, "constraint_name", None)
    if name:
        return str(name)
    return str(error.orig)
