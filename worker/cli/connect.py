"""Redis and the database for one command: opened when first used, closed at the end.

An unreachable service ends the command with one line naming it (never its password) and
exit code 1, not a traceback; so does data in Redis that is not a JSON job or result. A
``DATABASE_URL`` or ``REDIS_URL`` that cannot be used is bad input: exit code 2.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from worker.bootstrap import DatabasePool, Services
from worker.cli.output import CliError
from worker.environment import (
    UnusableSettings,
    checked_redis_settings,
    database_address,
    load_settings,
    reason,
    redis_address,
    scrub,
    unusable_url,
)
from worker.text import ExitCode

if TYPE_CHECKING:
    from arq.connections import ArqRedis, RedisSettings
    from sqlalchemy.ext.asyncio import AsyncEngine

    from domain.history_queries import Statement
    from domain.repositories import JobStamp
    from domain.uow import SqlAlchemyUnitOfWork, UnitOfWork
    from worker.cli.direct_reads import DirectReads
    from worker.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")
MIGRATE_HINT = "the database has no tables yet: run `uv run alembic upgrade head`"


class Backends(Services):
    """The services of one command, each opened on first use, whose failures are told in a
    line: an unreachable Redis or database, or one without the tables."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, DatabasePool(2))
        self._proven = False
        self._direct: DirectReads | None = None

    def redis_target(self) -> RedisSettings:
        target = checked_redis_settings(self.settings)
        # Someone at a prompt should hear about an outage in seconds, not after the worker's
        # patient retries: one reconnection attempt (redis-py's default without a Retry).
        return replace(target, conn_retries=min(target.conn_retries, 1), retry=None)

    async def open_queue(self) -> ArqRedis:
        from redis.exceptions import RedisError

        patience = self.settings.redis_connect_timeout + self.settings.redis_socket_timeout
        try:
            # arq's first PING has no reply timeout of its own: a hung Redis would hang us.
            return await asyncio.wait_for(super().open_queue(), timeout=patience)
        except (TimeoutError, OSError, RedisError) as problem:
            where = redis_address(self.settings)
            why = reason(problem) if str(problem) else f"no reply within {patience:g} s"
            raise CliError(f"cannot reach Redis at {where}: {why}") from None

    def new_engine(self) -> AsyncEngine:
        from sqlalchemy.exc import ArgumentError

        try:
            return super().new_engine()
        except (ArgumentError, ValueError) as problem:
            raise unusable_url(
                "DATABASE_URL", "a database URL", reason(problem), self.settings
            ) from None

    @asynccontextmanager
    async def unit_of_work(
        self, job: JobStamp | None = None
    ) -> AsyncIterator[SqlAlchemyUnitOfWork]:
        await self._prove_database()
        try:
            async with super().unit_of_work(job) as uow:
                yield uow
        except Exception as problem:
            raise _database_problem(problem, self.settings) from None

    async def _prove_database(self) -> None:
        """A first connection proves the database is there and ours to use."""
        if self._proven:
            return
        try:
            async with self.engine.connect():
                pass
        except (CliError, UnusableSettings):
            raise
        except Exception as problem:
            raise database_refusal("cannot connect to", problem, self.settings) from None
        self._proven = True

    async def read_rows(self, statement: Statement) -> Sequence[Mapping[str, Any]]:
        """A history read's rows (``domain.history_queries``): over asyncpg alone for a plain
        PostgreSQL URL (``worker.cli.direct_reads``), else in a unit of work."""
        from worker.cli.direct_reads import DirectReads, direct_dsn

        if self._direct is None:
            dsn = direct_dsn(self.settings.database_url.get_secret_value())
            if dsn is None:
                return await super().read_rows(statement)
            self._direct = DirectReads(dsn, self.settings)
        return await self._direct.rows(statement)

    async def close(self) -> None:
        # Closing after an outage may fail again; the outage was already reported.
        with suppress(Exception):
            if self._direct is not None:
                await self._direct.close()
            await super().close()


def run(command: Callable[[Backends], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run one command's coroutine; refusals and outages end it as a ``CliError`` (which
    ``worker.cli.Commands`` tells in a line, with its exit code), never with a password."""
    settings = settings or load_settings()
    logging.getLogger("arq").addHandler(logging.NullHandler())
    try:
        return asyncio.run(_with_backends(settings, command))
    except CliError as problem:
        message = scrub(problem.message, settings)
        raise CliError(message, problem.code, job_id=problem.job_id) from None
    except KeyboardInterrupt:
        raise CliError("interrupted", ExitCode.INTERRUPTED) from None
    except Exception as problem:
        if not _is_redis_outage(problem):
            raise
        message = f"lost the connection to Redis at {redis_address(settings)}: {reason(problem)}"
        raise CliError(scrub(message, settings)) from None


def read(
    use_case: Callable[Concatenate[UnitOfWork, P], Awaitable[Any]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> Any:
    """A read command's one use case, in a unit of work of its own (``Services.read``), its
    answer as JSON data; refusals and outages end the command with a line and an exit code."""
    from pydantic_core import to_jsonable_python

    async def answer(backends: Backends) -> Any:
        return to_jsonable_python(await backends.read(use_case, *args, **kwargs))

    return run(answer)


async def _with_backends(settings: Settings, command: Callable[[Backends], Awaitable[T]]) -> T:
    """The command on services of its own; what the domain or the operator actions refuse on
    purpose (not found, unknown job, data in Redis that is not ours) is one line, exit 1."""
    from domain.errors import DomainError
    from worker.arq_jobs import UnreadableData
    from worker.ops.actions import NotReplicated, Refused
    from worker.ops.job_state import UnknownJob

    backends = Backends(settings)
    try:
        return await command(backends)
    except (UnknownJob, UnreadableData, Refused, DomainError, NotReplicated) as problem:
        raise CliError(str(problem), job_id=getattr(problem, "job_id", None)) from None
    finally:
        await backends.close()


def _is_redis_outage(problem: BaseException) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(problem, RedisConnectionError | RedisTimeoutError)


def _database_problem(problem: Exception, settings: Settings) -> Exception:
    """A refusal to print for a lost database or an unmigrated one; else the error itself."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

    if not isinstance(problem, SQLAlchemyError | OSError | asyncio.TimeoutError):
        return problem
    detail = _detail(problem)
    if "no such table" in detail or ("relation" in detail and "does not exist" in detail):
        return CliError(MIGRATE_HINT)
    if isinstance(problem, DBAPIError) and not (
        problem.connection_invalidated or isinstance(problem, InterfaceError | OperationalError)
    ):
        return problem
    return database_refusal("lost", problem, settings)


def database_refusal(what: str, problem: BaseException, settings: Settings) -> CliError:
    """``cannot connect to`` or ``lost`` the database, where and why, in one line."""
    return CliError(f"{what} the database at {database_address(settings)}: {_detail(problem)}")


def _detail(problem: BaseException) -> str:
    from sqlalchemy.exc import DBAPIError

    if isinstance(problem, DBAPIError) and problem.orig is not None:
        return reason(problem.orig)
    return reason(problem)
