"""``dbjobs demo``: the real pipeline in one process, on a machine with nothing installed.

With ``DATABASE_URL`` and ``REDIS_URL`` unset, the queue is an in-process Redis
(fakeredis) and the database a fresh SQLite file (``demo.db``) migrated by Alembic; with
both set, the same scenario runs against those services (migrated to head first), on a
queue of its own so that workers already running there leave its jobs alone. Either
way a real arq worker (``worker.testing.inprocess``) runs the real jobs on this event loop while
the scenario enqueues them through arq's client, JSON both ways; then a report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis
from fakeredis import FakeServer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from sqlalchemy.engine import make_url

from domain.db import create_engine, is_sqlite
from worker.bootstrap import open_pool
from worker.demo.report import Report, count_rows
from worker.demo.scenario import (
    DemoError,
    Scenario,
    brief,
    chunk_size_for,
    new_progress,
)
from worker.settings import Settings, with_async_driver
from worker.testing import migrate as schema
from worker.testing.inprocess import fake_pool, in_process_worker, parked_cron_jobs, running
from worker.text import ExitCode, problems

DEFAULT_PROFILES = 2_000
DEFAULT_DATABASE_FILE = "demo.db"
MAX_PROFILES = 1_000_000
# SQLite has a single writer: more jobs at once would only queue on its lock.
SQLITE_MAX_JOBS = 1
# Never reached by the in-process mode: anything that tried a real Redis would fail loudly.
IN_PROCESS_REDIS_URL = "redis://in-process.invalid:6379/0"


@dataclass(frozen=True)
class Target:
    """The database and queue one demo run uses."""

    database_url: str = field(repr=False)  # may hold a password
    redis_url: str | None = field(repr=False)  # None: an in-process Redis
    database_file: Path | None  # the SQLite file the demo owns, recreated on each run

    @property
    def in_process(self) -> bool:
        return self.redis_url is None

    def describe(self) -> dict[str, str]:
        """Where things live, passwords hidden."""
        file = self.database_file
        database = f"SQLite file {file}" if file else redact(self.database_url)
        queue = redact(self.redis_url) if self.redis_url else "in-process (fakeredis)"
        return {"database": database, "queue": queue}


def choose_target(environ: Mapping[str, str], database_file: str | Path) -> Target:
    """The services named in the environment, or in-process ones when neither is named."""
    database_url = environ.get("DATABASE_URL", "").strip()
    redis_url = environ.get("REDIS_URL", "").strip()
    if database_url and redis_url:
        return Target(with_async_driver(database_url), redis_url, None)
    if database_url or redis_url:
        given, missing = "DATABASE_URL", "REDIS_URL"
        if redis_url:
            given, missing = missing, given
        raise DemoError(
            f"{given} is set but {missing} is not: set both to run the demo against your "
            "services, or neither to run it in-process",
            ExitCode.BAD_INPUT,
        )
    path = Path(database_file).expanduser().resolve()
    return Target(f"sqlite+aiosqlite:///{path}", None, path)


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL we can parse: show its scheme only
        return url.split(":", 1)[0] + "://…"


def run(
    profiles: int = DEFAULT_PROFILES,
    *,
    database_file: str | Path = DEFAULT_DATABASE_FILE,
    console: Console | None = None,
) -> int:
    """Run the demo and print its report; the process exit code (`ExitCode.OK` on success)."""
    out = console or Console()
    started = time.perf_counter()
    try:
        if not 1 <= profiles <= MAX_PROFILES:
            raise DemoError(f"profiles must be between 1 and {MAX_PROFILES:,}", ExitCode.BAD_INPUT)
        target = choose_target(os.environ, database_file)
        settings = _settings(target)
        _announce(out, target)
        with out.status("Migrating the database to the latest schema"):
            _migrate(target)
        with _worker_logs_on(out):
            report = asyncio.run(_play(target, settings, profiles, out))
    except DemoError as error:
        Console(stderr=True).print(f"[bold red]demo failed:[/] {error}", highlight=False)
        return error.code
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]demo interrupted[/]")
        return ExitCode.INTERRUPTED
    report.render(out, total_seconds=time.perf_counter() - started)
    return ExitCode.OK


def _settings(target: Target) -> Settings:
    redis_url = target.redis_url or IN_PROCESS_REDIS_URL
    try:
        settings = Settings(database_url=target.database_url, redis_url=redis_url)
    except ValidationError as error:
        told = "; ".join(problems(error))
        raise DemoError(f"invalid settings: {told}", ExitCode.BAD_INPUT) from None
    if is_sqlite(target.database_url):
        return settings.model_copy(update={"max_jobs": SQLITE_MAX_JOBS})
    # A queue of its own: the workers already serving the configured queue (the state the
    # Quick start leaves) would take the demo's jobs, and its worker would wait for jobs
    # it never sees (arq: "the job is not in queue").
    private = f"{settings.queue_name}:demo:{uuid.uuid4().hex[:12]}"
    return settings.model_copy(update={"queue_name": private})


def _migrate(target: Target) -> None:
    """A fresh SQLite file (or the configured database as is), migrated to head."""
    if (path := target.database_file) is not None:
        if path.is_dir():
            raise DemoError(f"{path} is a directory, not a database file", ExitCode.BAD_INPUT)
        path.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
    try:
        schema.upgrade(target.database_url)
    except FileNotFoundError as error:
        raise DemoError(str(error)) from None
    except Exception as error:
        where = redact(target.database_url)
        raise DemoError(f"could not migrate the database at {where}: {brief(error)}") from error


def _announce(console: Console, target: Target) -> None:
    if target.in_process:
        console.print(
            "[bold]dbjobs demo[/]: in-process Redis and a SQLite file; "
            "set DATABASE_URL and REDIS_URL to use your own services."
        )
    else:
        console.print("[bold]dbjobs demo[/]: against DATABASE_URL and REDIS_URL.")
    for name, place in target.describe().items():
        console.print(f"  {name}: {place}", highlight=False)


class _WithoutTraceback(logging.Formatter):
    """One line per problem: the demo ends with its own message, which a traceback would bury."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return ""


@contextlib.contextmanager
def _worker_logs_on(console: Console) -> Iterator[None]:
    """Warnings from arq and the worker (retries, failures) printed above the progress bars."""
    handler = RichHandler(logging.WARNING, console=console, show_path=False, show_time=False)
    handler.setFormatter(_WithoutTraceback())
    loggers = [logging.getLogger(name) for name in ("arq", "worker")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


async def _play(target: Target, settings: Settings, profiles: int, console: Console) -> Report:
    engine = create_engine(target.database_url, pool_size=2)
    chunk_size = chunk_size_for(profiles, settings.generation_chunk_size)
    try:
        before = await count_rows(engine)
        async with _pools(target, settings) as (producer, worker_pool):
            worker = in_process_worker(
                settings, worker_pool, cron_jobs=parked_cron_jobs(keep_results=True)
            )
            async with running(worker) as worker_run:
                with new_progress(console) as progress:
                    scenario = Scenario(
                        producer, worker_run, progress, engine, profiles, chunk_size
                    )
                    await scenario.play()
        after = await count_rows(engine)
    finally:
        await engine.dispose()
    return Report(target.describe(), scenario.tally, before, after, scenario.timings())


@contextlib.asynccontextmanager
async def _pools(target: Target, settings: Settings) -> AsyncIterator[tuple[ArqRedis, ArqRedis]]:
    """The producer's pool and the worker's, on the same Redis."""
    server = FakeServer() if target.in_process else None
    async with contextlib.AsyncExitStack() as stack:
        pools = []
        for _ in range(2):
            pool = fake_pool(settings, server) if server else await _open_pool(settings)
            # The worker closes its pool too as it stops; a second close is harmless.
            stack.push_async_callback(pool.aclose)
            pools.append(pool)
        yield pools[0], pools[1]


async def _open_pool(settings: Settings) -> ArqRedis:
    try:
        return await open_pool(settings)
    except Exception as error:
        where = redact(settings.redis_url.get_secret_value())
        raise DemoError(f"could not reach Redis at {where}: {brief(error)}") from error
