"""``generate-profiles --wait``: follow a generation through its chunks, from the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from worker.cli import output
from worker.cli.connect import run
from worker.cli.output import EXIT_TIMEOUT, CliError
from worker.cli.submit import Delivery, Report, enqueue_and_wait, report_and_exit
from worker.cli.waiting import deadline_after

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from domain.views import GenerationStatus
    from worker.cli.connect import Backends

FUNCTION = "generate_profiles"
CHUNK_FUNCTION = "generate_profiles_chunk"
POLL_SECONDS = 0.2
STALL_SECONDS = 10.0


class Bar:
    """A Rich progress bar on stderr, or nothing at all (``--json``)."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        if progress is not None:
            self._task = progress.add_task("planning the generation", total=None)

    def plan(self, total: int, generation_id: int) -> None:
        if self._progress is not None and self._task is not None:
            description = f"generation {generation_id}"
            self._progress.update(self._task, total=total, description=description)

    def advance_to(self, rows: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=rows)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Bar]:
    if not enabled:
        yield Bar(None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        SpinnerColumn(),
        output.description_column(),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=output.stderr()) as progress:
        yield Bar(progress)


def submit_generation(delivery: Delivery, payload: dict[str, Any]) -> None:
    """Enqueue the generation; with ``--wait``, follow it until every chunk has committed."""

    async def enqueue(backends: Backends) -> Report:
        if not delivery.wait:
            return await enqueue_and_wait(backends, delivery, FUNCTION, payload)
        started = time.monotonic()
        with progress_bar(enabled=not delivery.as_json) as bar:
            report = await enqueue_and_wait(backends, delivery, FUNCTION, payload)
            plan = report.outcome.result
            if report.outcome.status != "succeeded" or not _is_plan(plan):
                return report
            bar.plan(plan["total"], plan["generation_id"])
            status = await follow(backends, plan["generation_id"], delivery, bar)
        result = {**plan, "rows_done": status.rows_done, "chunks_done": status.chunks_done}
        result["seconds"] = round(time.monotonic() - started, 3)
        return replace(report, outcome=report.outcome.with_result(result))

    report = run(enqueue)
    if delivery.wait and not delivery.as_json and _is_plan(report.outcome.result):
        _summarise(report.outcome.result)
        return
    report_and_exit(delivery, report)


def _is_plan(result: Any) -> bool:
    return isinstance(result, dict) and {"generation_id", "total", "chunks"} <= result.keys()


async def follow(
    backends: Backends, generation_id: int, delivery: Delivery, bar: Bar
) -> GenerationStatus:
    from domain.services import generation_status

    deadline = deadline_after(delivery.timeout)
    last_rows, last_change = -1, time.monotonic()
    while True:
        async with backends.unit_of_work() as uow:
            status = await generation_status(uow, generation_id)
        bar.advance_to(status.rows_done)
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
                EXIT_TIMEOUT,
            )
        await asyncio.sleep(POLL_SECONDS)


async def refuse_failed_chunks(backends: Backends, generation_id: int) -> None:
    """A chunk that failed for good never commits: say so instead of waiting forever."""
    async with backends.unit_of_work() as uow:
        failed = [
            (record.job_id, record.error_type, record.error_message)
            for record in await uow.jobs.list_failed(limit=100)
            if record.function == CHUNK_FUNCTION
            and (record.payload or {}).get("generation_id") == generation_id
        ]
    if failed:
        job_id, kind, message = failed[0]
        raise CliError(
            f"generation {generation_id} cannot finish: {len(failed)} chunk job(s) failed; "
            f"first, {job_id}: {kind}: {message} (see `jobs failed`, `jobs retry {job_id}`)"
        )


def _summarise(result: dict[str, Any]) -> None:
    output.say(
        f"generation {result['generation_id']}: {result['rows_done']:,} of {result['total']:,} "
        f"profiles in {result['chunks_done']} of {result['chunks']} chunks "
        f"({result['seconds']:.1f}s)"
    )
