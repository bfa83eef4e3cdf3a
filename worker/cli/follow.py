"""Following jobs from the command line: polled until they end (``worker.ops.job_state`` says
where a job stands), with each retry told as it happens and a progress bar for every wait
on several jobs or a generation's chunks."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from worker.cli import output
from worker.cli.output import CliError, note
from worker.ops.actions import polls
from worker.ops.job_state import Outcome, known_outcome
from worker.ops.submissions import read_results
from worker.text import ExitCode

if TYPE_CHECKING:
    from domain.views import GenerationStatus
    from worker.cli.connect import Backends

NO_WORKER_HINT_AFTER = 5.0
GENERATION_POLL_SECONDS = 0.2
STALL_SECONDS = 10.0
Bar = Callable[..., None]  # a progress bar's update: total=, completed=, description=


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


async def await_outcome(
    backends: Backends, job_id: str, deadline: float | None, *, quiet: bool = False
) -> Outcome:
    """Poll until the job ends, saying so as each try is retried (unless ``quiet``);
    Ctrl-C or the deadline stop the wait, not the job."""
    started = time.monotonic()
    hinted = False
    retries_told: set[int | None] = set()
    try:
        async for _ in polls():
            outcome = await known_outcome(backends, job_id)
            if outcome.done:
                break
            if outcome.status == "retrying" and outcome.tries not in retries_told and not quiet:
                retries_told.add(outcome.tries)
                note(
                    f"try {outcome.tries} failed ({outcome.described_error()}); "
                    f"retrying at {output.short_time(outcome.next_retry_at)}"
                )
            check_deadline(deadline, f"job {job_id} is still {outcome.status}", job_id)
            if not hinted and time.monotonic() - started > NO_WORKER_HINT_AFTER:
                hinted = True
                await hint_if_no_worker(backends)
    except asyncio.CancelledError:
        note(f"stopped waiting; job {job_id} goes on (see `jobs status {job_id}`)")
        raise
    return outcome


async def await_many(
    backends: Backends, job_ids: Sequence[str], deadline: float | None, bar: Bar
) -> list[Outcome]:
    """Wait for many jobs, reading all their results in one round trip per poll."""
    outcomes: dict[str, Outcome] = {}
    bar(total=len(job_ids), description=f"{len(job_ids)} jobs")
    async for _ in polls():
        pending = [job_id for job_id in job_ids if job_id not in outcomes]
        outcomes.update(await read_results(backends, pending))
        bar(completed=len(outcomes))
        if len(outcomes) == len(job_ids):
            break
        waiting = len(job_ids) - len(outcomes)
        check_deadline(deadline, f"{waiting} of {len(job_ids)} jobs not finished", job_ids[0])
    return [outcomes[job_id] for job_id in job_ids]


def check_deadline(deadline: float | None, state: str, job_id: str) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise CliError(
            f"gave up waiting: {state}; it goes on (see `jobs status {job_id}`)",
            ExitCode.TIMEOUT,
            job_id=job_id,
        )


async def hint_if_no_worker(backends: Backends) -> None:
    from arq.constants import health_check_key_suffix

    queue = await backends.queue()
    if not await queue.exists(backends.settings.queue_name + health_check_key_suffix):
        note("still waiting, and no worker seems to be running: start one with `jobs worker`")


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


async def follow_generation(
    backends: Backends, generation_id: int, deadline: float | None, bar: Bar
) -> GenerationStatus:
    """Poll the database until every chunk has committed; say so when one failed for good."""
    from domain.services import generation_status

    last_rows, last_change = -1, time.monotonic()
    while True:
        async with backends.unit_of_work() as uow:
            status = await generation_status(uow, generation_id)
        bar(completed=status.rows_done)
        if status.done:
            return status
        now = time.monotonic()
        if status.rows_done != last_rows:
            last_rows, last_change = status.rows_done, now
        elif now - last_change > STALL_SECONDS:
            await refuse_failed_chunks(backends, generation_id)
            last_change = now
        if deadline is not None and now >= deadline:
            raise CliError(
                f"gave up waiting: generation {generation_id} has {status.rows_done:,} of "
                f"{status.total:,} profiles; it goes on",
                ExitCode.TIMEOUT,
            )
        await asyncio.sleep(GENERATION_POLL_SECONDS)


async def refuse_failed_chunks(backends: Backends, generation_id: int) -> None:
    """A chunk that failed for good never commits: say so instead of waiting forever."""
    from worker.registry import GENERATE_CHUNK

    async with backends.unit_of_work() as uow:
        failed = [
            (record.job_id, record.error_type, record.error_message)
            for record in await uow.jobs.list_failed(limit=100)
            if record.function == GENERATE_CHUNK.name
            and (record.payload or {}).get("generation_id") == generation_id
        ]
    if failed:
        job_id, kind, message = failed[0]
        raise CliError(
            f"generation {generation_id} cannot finish: {len(failed)} chunk job(s) failed; "
            f"first, {job_id}: {kind}: {message} (see `jobs failed`, `jobs retry {job_id}`)"
        )
