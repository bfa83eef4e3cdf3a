"""Following jobs to their end, whichever face waits (the CLI's ``--wait``, the API's
``?wait=``): one job through each state it passes, the jobs of a submission until all have
ended, a generation's chunks until every row is committed.

Each yields where things stand at every poll, and stops when the wait is over or when its
deadline (a ``time.monotonic()``) has passed: the face shows what it likes of each step,
and says what it likes when the deadline came first.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from worker.ops.job_state import Outcome, Sources, generation_plan, known_outcome
from worker.ops.submissions import read_results

if TYPE_CHECKING:
    from domain.views import GenerationStatus

FIRST_POLL = 0.02
SLOWEST_POLL = 0.25
GENERATION_POLL_SECONDS = 0.2
STALL_SECONDS = 10.0  # a generation without progress this long: look for failed chunks
FAILED_CHUNKS_READ = 100


class ChunksFailed(Exception):
    """A generation that cannot finish: some of its chunk jobs failed for good."""

    def __init__(self, generation_id: int, failed: Sequence[tuple[str, str, str]]) -> None:
        self.generation_id = generation_id
        self.job_id, kind, message = failed[0]  # the first failed chunk's
        super().__init__(
            f"generation {generation_id} cannot finish: {len(failed)} chunk job(s) failed; "
            f"first, {self.job_id}: {kind}: {message}"
        )


def deadline_after(seconds: float | None) -> float | None:
    """The deadline ``seconds`` from now; None (no deadline) for None."""
    return None if seconds is None else time.monotonic() + seconds


async def polls(deadline: float | None = None) -> AsyncIterator[None]:
    """How a face waits for jobs to end: now, then again and again, each time a little later
    (every ``FIRST_POLL`` s at first, up to every ``SLOWEST_POLL`` s), until ``deadline`` (a
    ``time.monotonic()``) has passed."""
    delay = FIRST_POLL
    while True:
        yield
        left = math.inf if deadline is None else deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 1.5, SLOWEST_POLL)


async def watch(
    sources: Sources, job_id: str, deadline: float | None = None, *, describe: bool = False
) -> AsyncIterator[Outcome]:
    """Where the job stands at each poll, until it has ended (the last one yielded is done)
    or ``deadline`` has passed (it is not); ``UnknownJob`` when nothing knows it."""
    async for _ in polls(deadline):
        outcome = await known_outcome(sources, job_id, describe=describe)
        yield outcome
        if outcome.done:
            return


async def outcome_within(sources: Sources, job_id: str, seconds: float) -> Outcome:
    """Where the job stands once it has ended, or after ``seconds`` (then still going)."""
    async for outcome in watch(sources, job_id, time.monotonic() + seconds, describe=True):
        last = outcome
    return last


async def watch_all(
    sources: Sources, job_ids: Sequence[str], deadline: float | None = None
) -> AsyncIterator[dict[str, Outcome]]:
    """The jobs among ``job_ids`` that have ended (one dict, growing), at each poll, until
    all have or ``deadline`` has passed; all their results read in one round trip a poll."""
    ended: dict[str, Outcome] = {}
    async for _ in polls(deadline):
        pending = [job_id for job_id in job_ids if job_id not in ended]
        ended.update(await read_results(sources, pending))
        yield ended
        if len(ended) == len(job_ids):
            return


async def watch_generation(
    sources: Sources, generation_id: int, parent_id: str, deadline: float | None = None
) -> AsyncIterator[GenerationStatus]:
    """The generation's progress in the database at each poll, until every chunk has
    committed or ``deadline`` has passed; ``ChunksFailed`` once it stalls on chunk jobs
    (children of ``parent_id``, the job that planned it) that failed for good: they never
    commit, which is better said than waited for."""
    from domain.errors import GenerationNotFound
    from domain.progress_queries import generation_status

    last_rows, last_change = -1, time.monotonic()
    while True:
        status = await generation_status(sources.read_rows, generation_id)
        if status is None:
            raise GenerationNotFound(generation_id)
        yield status
        if status.done:
            return
        now = time.monotonic()
        if status.rows_done != last_rows:
            last_rows, last_change = status.rows_done, now
        elif now - last_change > STALL_SECONDS:
            await _refuse_failed_chunks(sources, generation_id, parent_id)
            last_change = now
        if deadline is not None and now >= deadline:
            return
        await asyncio.sleep(GENERATION_POLL_SECONDS)


def generation_result(
    plan: dict[str, Any], status: GenerationStatus, seconds: float
) -> dict[str, Any]:
    """The plan with what was done: the rows and chunks committed, in ``seconds``."""
    done = {"rows_done": status.rows_done, "chunks_done": status.chunks_done}
    return {**plan, **done, "seconds": round(seconds, 3)}


async def _refuse_failed_chunks(sources: Sources, generation_id: int, parent_id: str) -> None:
    from domain.services import list_children

    async with sources.unit_of_work() as uow:
        failed = await list_children(uow, parent_id, "failed", FAILED_CHUNKS_READ)
    if failed:
        told = [(f.job_id, str(f.error_type), str(f.error_message)) for f in failed]
        raise ChunksFailed(generation_id, told)


async def with_generation(sources: Sources, outcome: Outcome) -> Outcome:
    """A ``generate_profiles`` job that planned a generation, with the generation's progress
    as a whole for ``children``: its chunks committed and the profiles written so far."""
    plan = generation_plan(outcome.result)
    if plan is None:
        return outcome
    from domain.progress_queries import generation_status

    status = await generation_status(sources.read_rows, plan["generation_id"])
    if status is None:  # its rows were deleted since: the plan is all there is
        return outcome
    children = {
        "generation_id": status.generation_id,
        "chunks": status.chunks,
        "chunks_done": status.chunks_done,
        "profiles": status.total,
        "profiles_written": status.rows_done,
        "done": status.done,
    }
    return outcome.model_copy(update={"children": children})
