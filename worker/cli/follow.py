"""Following jobs from the command line (``worker.ops.following`` polls them): each retry
told as it happens, a hint when no worker seems to run, a progress bar for every wait on
several jobs or a generation's chunks, and a refusal when the wait gives up."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from worker.cli import output
from worker.cli.output import CliError, note
from worker.ops.following import ChunksFailed, watch, watch_all, watch_generation
from worker.text import ExitCode

if TYPE_CHECKING:
    from domain.views import GenerationStatus
    from worker.cli.connect import Backends
    from worker.ops.job_state import Outcome

NO_WORKER_HINT_AFTER = 5.0
Bar = Callable[..., None]  # a progress bar's update: total=, completed=, description=


async def await_outcome(
    backends: Backends, job_id: str, deadline: float | None, *, quiet: bool = False
) -> Outcome:
    """Wait until the job ends, saying so as each try is retried (unless ``quiet``);
    Ctrl-C or the deadline stop the wait, not the job."""
    started = time.monotonic()
    hinted = False
    retries_told: set[int | None] = set()
    try:
        async for outcome in watch(backends, job_id, deadline):
            if outcome.status == "retrying" and outcome.tries not in retries_told and not quiet:
                retries_told.add(outcome.tries)
                note(
                    f"try {outcome.tries} failed ({outcome.described_error()}); "
                    f"retrying at {output.short_time(outcome.next_retry_at)}"
                )
            now = time.monotonic()
            waiting = not outcome.done and (deadline is None or now < deadline)
            if waiting and not hinted and now - started > NO_WORKER_HINT_AFTER:
                hinted = True
                await hint_if_no_worker(backends)
    except asyncio.CancelledError:
        note(f"stopped waiting; job {job_id} goes on (see `dbjobs status {job_id}`)")
        raise
    if not outcome.done:
        raise gave_up(f"job {job_id} is still {outcome.status}", job_id)
    return outcome


async def await_many(
    backends: Backends, job_ids: Sequence[str], deadline: float | None, bar: Bar
) -> list[Outcome]:
    """Wait for many jobs, the bar counting those that have ended."""
    bar(total=len(job_ids), description=f"{len(job_ids)} jobs")
    async for ended in watch_all(backends, job_ids, deadline):
        bar(completed=len(ended))
    if len(ended) < len(job_ids):
        waiting = len(job_ids) - len(ended)
        raise gave_up(f"{waiting} of {len(job_ids)} jobs not finished", job_ids[0])
    return [ended[job_id] for job_id in job_ids]


def gave_up(state: str, job_id: str) -> CliError:
    return CliError(
        f"gave up waiting: {state}; it goes on (see `dbjobs status {job_id}`)",
        ExitCode.TIMEOUT,
        job_id=job_id,
    )


async def hint_if_no_worker(backends: Backends) -> None:
    """A note when no worker of the queue beats (``worker.ops.workers``)."""
    from worker.ops.workers import read_roster

    roster = await read_roster(await backends.queue(), backends.settings.queue_name)
    if not roster.live:
        note("still waiting, and no worker seems to be running: start one with `dbjobs worker`")


@contextmanager
def progress_bar(shown: bool, description: str) -> Iterator[Bar]:
    """A Rich progress bar on stderr (hidden with ``--json``), as its one task's update."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),  # our own words: no markup in them
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    console = output.stderr()
    with Progress(*columns, console=console, transient=True, disable=not shown) as progress:
        yield functools.partial(progress.update, progress.add_task(description, total=None))


async def await_generation(
    backends: Backends, generation_id: int, parent_id: str, deadline: float | None, bar: Bar
) -> GenerationStatus:
    """Wait until every chunk (a child of ``parent_id``) has committed; say so when one
    failed for good."""
    try:
        async for status in watch_generation(backends, generation_id, parent_id, deadline):
            bar(completed=status.rows_done)
    except ChunksFailed as failed:
        raise CliError(f"{failed} (see `dbjobs failed`, `dbjobs retry {failed.job_id}`)") from None
    if not status.done:
        raise CliError(
            f"gave up waiting: generation {generation_id} has {status.rows_done:,} of "
            f"{status.total:,} profiles; it goes on",
            ExitCode.TIMEOUT,
        )
    return status
