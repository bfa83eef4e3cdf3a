"""How far work split into jobs got: a submission's jobs (a file's metric batches, a
generation's chunk jobs) by state, with their first failures and their results added up;
a generation's chunks committed and profiles written.

SQL text, as ``domain.history_queries`` is, that any ``Rows`` runs: the unit of work's
session (the repositories: the console, the worker) or the CLI's one asyncpg connection
(``dbjobs status``, which so never loads SQLAlchemy). A submission's reads use the
(parent_id, status, finished_at) index (tests/integration/test_history_indexes.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from domain.history_queries import SUMMARY, Rows, Statement, columns, json_value
from domain.limits import chunk_count
from domain.views import GenerationStatus, JobSummary, Submission, add_up

FAILURES_SHOWN = 5
MAX_SUMMED = 10_000  # children whose results a submission's totals add up
# Each result may hold 16 KiB: ten thousand of them are never in memory at once.
RESULTS_PAGE = 500

# A state is written into the SQL as a literal, never bound: a generic plan made without
# it may walk every child of the submission looking for a rare one.
_CHILDREN = "FROM job_records WHERE parent_id = :parent_id"


def states_statement(parent_id: str) -> Statement:
    sql = f"SELECT status AS state, count(*) AS jobs {_CHILDREN} GROUP BY status"
    return Statement(sql, {"parent_id": parent_id})


def failures_statement(parent_id: str, limit: int) -> Statement:
    """The submission's first failures, oldest first."""
    sql = (
        f"SELECT {columns(SUMMARY)} {_CHILDREN} AND status = 'failed' "
        "ORDER BY finished_at, job_id LIMIT :limit"
    )
    return Statement(sql, {"parent_id": parent_id, "limit": limit})


def results_statement(parent_id: str, after: tuple[datetime, str] | None, limit: int) -> Statement:
    """A page of its successes' results, in the order they ended; ``after`` (a finished_at
    and job id) is the last one of the page before."""
    params: dict[str, Any] = {"parent_id": parent_id, "limit": limit}
    sql = f"SELECT finished_at, job_id, result {_CHILDREN} AND status = 'succeeded'"
    if after is not None:
        # The first condition is the index's range; the second breaks ties in it.
        sql += " AND finished_at >= :after_at AND (finished_at > :after_at OR job_id > :after_id)"
        params.update(after_at=after[0], after_id=after[1])
    return Statement(sql + " ORDER BY finished_at, job_id LIMIT :limit", params)


async def submission_of(rows: Rows, parent_id: str) -> Submission | None:
    """How far the jobs of a submission got, by state; None when none has been recorded."""
    states = {row["state"]: int(row["jobs"]) for row in await rows(states_statement(parent_id))}
    if not states:
        return None
    failed = await rows(failures_statement(parent_id, FAILURES_SHOWN))
    totals: dict[str, Any] = {}
    async for results in results_of(rows, parent_id, MAX_SUMMED):
        add_up(results, totals)
    return Submission(
        parent_id=parent_id,
        states=states,
        failures=[JobSummary.model_validate(row) for row in failed],
        totals=totals,
    )


async def results_of(
    rows: Rows, parent_id: str, limit: int
) -> AsyncIterator[list[dict[str, Any] | None]]:
    """The first ``limit`` results of a submission's successes, ``RESULTS_PAGE`` at a time."""
    after: tuple[datetime, str] | None = None
    while limit > 0:
        asked = min(RESULTS_PAGE, limit)
        page = await rows(results_statement(parent_id, after, asked))
        if page:
            yield [json_value(row["result"]) for row in page]
        if len(page) < asked:
            return
        limit -= asked
        after = page[-1]["finished_at"], page[-1]["job_id"]


def generation_statement(generation_id: int) -> Statement:
    sql = (
        "SELECT g.total, g.chunk_size, count(c.chunk_index) AS chunks_done, "
        "coalesce(sum(c.rows_inserted), 0) AS rows_done FROM profile_generations AS g "
        "LEFT JOIN profile_generation_chunks AS c ON c.generation_id = g.id "
        "WHERE g.id = :generation_id GROUP BY g.id, g.total, g.chunk_size"
    )
    return Statement(sql, {"generation_id": generation_id})


async def generation_status(rows: Rows, generation_id: int) -> GenerationStatus | None:
    """Its chunks committed and profiles written; None when there is no such generation."""
    found = await rows(generation_statement(generation_id))
    if not found:
        return None
    row = found[0]
    return GenerationStatus(
        generation_id=generation_id,
        total=row["total"],
        chunks=chunk_count(row["total"], row["chunk_size"]),
        chunks_done=int(row["chunks_done"]),
        rows_done=int(row["rows_done"]),
    )
