"""Shared by the SQLite tests and their fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from domain.uow import SqlAlchemyUnitOfWork

UowFactory = Callable[..., SqlAlchemyUnitOfWork]


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
