"""``jobs demo``: the real pipeline in one process, on a machine with nothing installed.

With ``DATABASE_URL`` and ``REDIS_URL`` unset, the queue is an in-process Redis
(fakeredis) and the database a fresh SQLite file (``demo.db``) migrated by Alembic; with
both set, the same scenario runs against those services (migrated to head first). Either
way a real arq worker, built by ``worker.main.build_worker_settings``, runs the real jobs
on this event loop while the producer enqueues them through arq's client, JSON both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from domain.db import create_engine
from worker.config import Settings
from worker.demo.jobs import Jobs, Steps, Tally
from worker.demo.report import Summary, count_rows, render
from worker.demo.scenario import Plan, Scenario
from worker.demo.setup import (
    EXIT_BAD_INPUT,
    DemoError,
    Target,
    choose_target,
    demo_settings,
    prepare_database,
)
from worker.demo.worker import open_queues, running_worker

DEFAULT_PROFILES = 2_000
DEFAULT_DATABASE_FILE = "demo.db"
MAX_PROFILES = 1_000_000
EXIT_INTERRUPTED = 130


def run(
    profiles: int = DEFAULT_PROFILES,
    *,
    database_file: str | Path = DEFAULT_DATABASE_FILE,
    metric_batches: int = 5,
    batch_size: int = 1_000,
    job_timeout: float = 120.0,
    console: Console | None = None,
) -> int:
    """Run the demo and print its summary; the process exit code (0 on success)."""
    out = console or Console()
    errors = Console(stderr=True)
    started = time.perf_counter()
    try:
        _check_sizes(profiles, metric_batches, batch_size)
        target = choose_target(os.environ, database_file)
        settings = demo_settings(target)
        plan = Plan(
            profiles=profiles,
            metric_batches=metric_batches,
            batch_size=batch_size,
            max_chunk_size=settings.generation_chunk_size,
            tag=uuid.uuid4().hex[:8],
        )
        _announce(out, target)
        with out.status("Migrating the database to the latest schema"):
            prepare_database(target)
        with _worker_logs_on(out):
            summary = asyncio.run(_play(target, settings, plan, out, job_timeout))
    except DemoError as error:
        errors.print(f"[bold red]demo failed:[/] {error}", highlight=False)
        return error.code
    except KeyboardInterrupt:
        errors.print("[yellow]demo interrupted[/]")
        return EXIT_INTERRUPTED
    render(out, summary, total_seconds=time.perf_counter() - started)
    return 0


def _check_sizes(profiles: int, metric_batches: int, batch_size: int) -> None:
    if not 1 <= profiles <= MAX_PROFILES:
        raise DemoError(f"profiles must be between 1 and {MAX_PROFILES:,}", EXIT_BAD_INPUT)
    if not 1 <= metric_batches <= 100 or not 1 <= batch_size <= 50_000:
        raise DemoError("metric batches must be 1-100 and batch sizes 1-50,000", EXIT_BAD_INPUT)


def _announce(console: Console, target: Target) -> None:
    if target.in_process:
        console.print(
            "[bold]jobs demo[/]: in-process Redis and a SQLite file; "
            "set DATABASE_URL and REDIS_URL to use your own services."
        )
    else:
        console.print("[bold]jobs demo[/]: against DATABASE_URL and REDIS_URL.")
    for name, place in target.describe().items():
        console.print(f"  {name}: {place}", highlight=False)


class _WithoutTraceback(logging.Formatter):
    """One line per problem: the demo ends with its own message, which a traceback would bury."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return ""


@contextlib.contextmanager
def _worker_logs_on(console: Console) -> Iterator[None]:
    """Warnings from arq and the worker (retries, failures) printed above the progress bars."""
    handler = RichHandler(console=console, show_path=False, show_time=False)
    handler.setFormatter(_WithoutTraceback())
    loggers = [logging.getLogger(name) for name in ("arq", "worker")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


async def _play(
    target: Target, settings: Settings, plan: Plan, console: Console, job_timeout: float
) -> Summary:
    engine = create_engine(target.database_url, pool_size=2)
    tally = Tally()
    try:
        before = await count_rows(engine)
        async with (
            open_queues(target, settings) as queues,
            running_worker(settings, queues, in_process=target.in_process) as worker,
        ):
            with _progress(console) as progress:
                steps = Steps(progress)
                jobs = Jobs(queues.producer, worker, timeout=job_timeout, tally=tally)
                await Scenario(jobs, steps, engine, plan).play()
        after = await count_rows(engine)
    finally:
        await engine.dispose()
    return Summary(
        where=target.describe(),
        jobs=tally.rows(),
        rows_before=before,
        rows_after=after,
        timings=steps.timings,
    )


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
