"""The job history's reads of ``domain.history_queries`` for the CLI (``dbjobs list``,
``dbjobs failed``, the job ids of ``dbjobs status`` and the record of a job Redis has
forgotten), over one asyncpg connection of their own: SQLAlchemy and the models stay
unloaded, a third of a second of each command's start.

Only for a plain PostgreSQL URL (no query options, which SQLAlchemy's dialect would
translate): any other goes through a unit of work, as every other read does. A statement
runs once on a new connection, so PostgreSQL plans it with its values: they are bound,
never written into the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from worker.cli.connect import MIGRATE_HINT, database_refusal
from worker.cli.output import CliError

if TYPE_CHECKING:
    from domain.history_queries import Statement
    from worker.settings import Settings

SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})
_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def direct_dsn(url: str) -> str | None:
    """The URL as asyncpg reads it; None for one it should not be given."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in SCHEMES or parts.query or parts.fragment or not parts.path[1:]:
        return None
    return urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))


def positional(statement: Statement) -> tuple[str, list[Any]]:
    """The statement as asyncpg takes it: ``$1, $2...`` for its ``:name`` parameters."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    sql = _PARAMETER.sub(number, statement.sql)
    return sql, [statement.params[name] for name in names]


class DirectReads:
    """One connection, opened on first use; an outage or a database without tables is told
    in a line, as ``worker.cli.connect.Backends`` tells them."""

    def __init__(self, dsn: str, settings: Settings) -> None:
        self._dsn = dsn
        self._settings = settings
        self._connection: Any = None  # asyncpg's Connection: asyncpg ships no types

    async def rows(self, statement: Statement) -> Sequence[Mapping[str, Any]]:
        import asyncpg  # type: ignore[import-untyped]

        connection = await self._connect()
        sql, arguments = positional(statement)
        try:
            return [dict(row) for row in await connection.fetch(sql, *arguments)]
        except asyncpg.UndefinedTableError:
            raise CliError(MIGRATE_HINT) from None
        except (OSError, asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError) as lost:
            raise database_refusal("lost", lost, self._settings) from None

    async def _connect(self) -> Any:
        import asyncpg

        if self._connection is None:
            try:
                self._connection = await asyncpg.connect(self._dsn)
            except Exception as problem:  # refused, unknown database, bad password, TLS...
                raise database_refusal("cannot connect to", problem, self._settings) from None
        return self._connection

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
