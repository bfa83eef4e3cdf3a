"""Redis and the database for one command: opened when first used, closed at the end.

An unreachable service ends the command with one line naming it (never its password) and
exit code 1, not a traceback; so does data in Redis that is not a JSON job or result. A
``DATABASE_URL`` or ``REDIS_URL`` that cannot be used is bad input: exit code 2.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urlsplit

import typer

from worker.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, BadInput, CliError, refuse

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from arq.jobs import Job
    from sqlalchemy.ext.asyncio import AsyncEngine

    from domain.uow import SqlAlchemyUnitOfWork
    from worker.config import Settings
    from worker.connections import SafeRedisSettings

T = TypeVar("T")
MIGRATE_HINT = "the database has no tables yet: run `uv run alembic upgrade head`"
EXPECTED_URL = {
    "REDIS_URL": "redis://[:password@]host[:port]/db",
    "DATABASE_URL": "postgresql://user[:password]@host[:port]/name",
}


class Backends:
    """The connections of one command; each opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ArqRedis | None = None
        self._engine: AsyncEngine | None = None

    async def queue(self) -> ArqRedis:
        if self._pool is None:
            self._pool = await _open_queue(self.settings)
        return self._pool

    async def job(self, job_id: str) -> Job:
        """The job as arq reads it, except that unreadable data in Redis ends the command."""
        from worker.readable import readable_job

        return readable_job(job_id, await self.queue(), self.settings.queue_name)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[SqlAlchemyUnitOfWork]:
        from domain.db import create_session_factory
        from domain.uow import SqlAlchemyUnitOfWork

        engine = await self._database()
        try:
            async with SqlAlchemyUnitOfWork(create_session_factory(engine)) as uow:
                yield uow
        except Exception as problem:
            raise _database_problem(problem, self.settings) from None

    async def _database(self) -> AsyncEngine:
        """The engine, once a first connection proved the database is there and ours to use."""
        if self._engine is None:
            engine = _new_engine(self.settings)
            try:
                async with engine.connect():
                    pass
            except Exception as problem:
                await engine.dispose()
                where = database_address(self.settings)
                detail = _detail(problem)
                raise CliError(f"cannot connect to the database at {where}: {detail}") from None
            self._engine = engine
        return self._engine

    async def close(self) -> None:
        # Closing after an outage may fail again; the outage was already reported.
        if self._pool is not None:
            with suppress(Exception):
                await self._pool.aclose()
        if self._engine is not None:
            with suppress(Exception):
                await self._engine.dispose()


def load_settings() -> Settings:
    from pydantic import ValidationError

    from worker.config import Settings

    try:
        settings = Settings()
    except ValidationError as problem:
        from worker.errors import problems

        details = "; ".join(problems(problem))
        raise BadInput(f"invalid configuration (environment or .env): {details}") from None
    _refuse_unreadable_urls(settings)
    return settings


def _refuse_unreadable_urls(settings: Settings) -> None:
    """Every command refuses a URL urllib cannot read, before it connects to anything.

    Only urllib here: SQLAlchemy's and arq's own parsers cost 0.5 s and 0.25 s of imports,
    so each runs where its service is opened (a producer never loads SQLAlchemy).
    """
    for name, secret in (
        ("REDIS_URL", settings.redis_url),
        ("DATABASE_URL", settings.database_url),
    ):
        problem = _url_problem(secret.get_secret_value())
        if problem is not None:
            message = f"{name} is not a URL: {problem} (expected {EXPECTED_URL[name]})"
            raise BadInput(scrub(message, settings))


def _url_problem(url: str) -> str | None:
    if not url.strip():
        return "it is empty"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # urllib checks the port when it is read
    except ValueError as problem:
        return reason(problem)
    if not parts.scheme:
        return "it has no scheme://"
    return None


def run(command: Callable[[Backends], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run one command's coroutine; refusals and outages end it with a line and an exit code."""
    settings = settings or load_settings()
    logging.getLogger("arq").addHandler(logging.NullHandler())
    try:
        return asyncio.run(_with_backends(settings, command))
    except CliError as problem:
        refuse(CliError(scrub(problem.message, settings), problem.code, job_id=problem.job_id))
        raise typer.Exit(problem.code) from None
    except KeyboardInterrupt:
        refuse(CliError("interrupted", EXIT_INTERRUPTED))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as problem:
        if not _is_redis_outage(problem):
            raise
        message = f"lost the connection to Redis at {redis_address(settings)}: {reason(problem)}"
        refuse(CliError(scrub(message, settings)))
        raise typer.Exit(EXIT_FAILED) from None


async def _with_backends(settings: Settings, command: Callable[[Backends], Awaitable[T]]) -> T:
    from worker.operations import Refused
    from worker.status import UnknownJob, UnreadableData

    backends = Backends(settings)
    try:
        return await command(backends)
    except (UnknownJob, UnreadableData, Refused) as problem:
        raise CliError(str(problem), job_id=problem.job_id) from None
    finally:
        await backends.close()


async def _open_queue(settings: Settings) -> ArqRedis:
    from redis.exceptions import RedisError

    from worker.connections import bound_reply_time, open_pool

    target = redis_target(settings)
    # Someone at a prompt should hear about an outage in seconds, not after the worker's
    # patient retries: one reconnection attempt (redis-py's default without a Retry).
    target = replace(target, conn_retries=min(target.conn_retries, 1), retry=None)
    patience = settings.redis_connect_timeout + settings.redis_socket_timeout
    try:
        # arq's first PING has no reply timeout of its own: a hung Redis would hang us.
        pool = await asyncio.wait_for(open_pool(settings, target), timeout=patience)
        await bound_reply_time(pool, settings.redis_socket_timeout)
        return pool
    except (TimeoutError, OSError, RedisError) as problem:
        where = redis_address(settings)
        why = reason(problem) if str(problem) else f"no reply within {patience:g} s"
        raise CliError(f"cannot reach Redis at {where}: {why}") from None


def redis_target(settings: Settings) -> SafeRedisSettings:
    """Where and how to reach Redis, as arq reads ``REDIS_URL``; a URL it refuses is bad input."""
    from worker.connections import redis_settings

    try:
        return redis_settings(settings)
    except (ValueError, RuntimeError) as problem:  # arq raises RuntimeError for a bad scheme
        raise _unusable_url("REDIS_URL", "a Redis URL", problem, settings) from None


def _is_redis_outage(problem: BaseException) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(problem, RedisConnectionError | RedisTimeoutError)


def _new_engine(settings: Settings) -> AsyncEngine:
    from sqlalchemy.exc import ArgumentError

    from domain.db import create_engine

    try:
        return create_engine(settings.database_url.get_secret_value(), pool_size=2)
    except (ArgumentError, ValueError) as problem:
        raise _unusable_url("DATABASE_URL", "a database URL", problem, settings) from None


def _unusable_url(name: str, kind: str, problem: Exception, settings: Settings) -> BadInput:
    # Scrubbed here too: `jobs worker` reports it without going through run().
    message = f"{name} is not {kind}: {reason(problem)} (expected {EXPECTED_URL[name]})"
    return BadInput(scrub(message, settings))


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
    return CliError(f"lost the database at {database_address(settings)}: {detail}")


def _detail(problem: BaseException) -> str:
    from sqlalchemy.exc import DBAPIError

    if isinstance(problem, DBAPIError) and problem.orig is not None:
        return reason(problem.orig)
    return reason(problem)


def reason(problem: BaseException) -> str:
    from worker.errors import first_line

    return first_line(problem, 300)


# The helpers below speak on error paths: they never raise, whatever the URLs hold.


def redis_address(settings: Settings) -> str:
    try:
        parts = urlsplit(settings.redis_url.get_secret_value())
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"
    except ValueError:
        return "the address in REDIS_URL"


def database_address(settings: Settings) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(settings.database_url.get_secret_value())
    except (ArgumentError, ValueError):
        return "the address in DATABASE_URL"
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def scrub(text: str, settings: Settings) -> str:
    """Belt and braces: whatever a library put in a message, no password leaves the CLI."""
    for secret in (settings.database_url, settings.redis_url):
        url = secret.get_secret_value()
        if url:
            text = text.replace(url, "<url>")
        password = _password(url)
        if password:
            text = text.replace(password, "***").replace(unquote(password), "***")
    return text


def _password(url: str) -> str | None:
    """The password in ``url``, also when urllib refuses the URL for its host or port."""
    try:
        return urlsplit(url).password
    except ValueError:
        # urllib splits the netloc off before it checks the host: the userinfo is
        # still everything before the netloc's last "@".
        netloc = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
        return netloc.rpartition("@")[0].partition(":")[2] or None
