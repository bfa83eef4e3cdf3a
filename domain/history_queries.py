"""The job history's reads that a read command makes: its two lists, newest first (the
jobs, by state and function, a page at a time; the failures nobody has handled), and
finding a job id (known as typed, or the ids that start with a prefix), and the record
``dbjobs status`` shows of a job Redis has forgotten.

They are SQL text, with ``:name`` parameters, that any connection runs: the unit of work's
session (``HistoryReads``: the console, the worker) or one asyncpg connection of its own
(``dbjobs list``, ``dbjobs failed``, ``dbjobs status``, which so never load SQLAlchemy and
its models: a third of a second of each command's start). Nothing here imports SQLAlchemy.
The lists read an index (tests/integration/test_history_indexes.py proves it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from domain.views import JobHeader, JobSummary

# A job's state in the history; queued, deferred and in_progress are Redis's to say.
JobState = Literal["retrying", "succeeded", "failed", "cancelled"]

# What `dbjobs failed` lists and `dbjobs failed --handle` clears. The prune keeps failures, so
# the handled ones pile up for good: a partial index holds only the few unhandled ones.
UNHANDLED_FAILURE = "status = 'failed' AND handled_at IS NULL"
# Lists leave out the two columns that can be large (a payload up to 64 KiB, a result up
# to 16 KiB; as Python objects, many times that): a page of 1,000 such failures took
# 1.7 GB to list when they were read.
SUMMARY = tuple(JobSummary.model_fields)
HEADER = tuple(JobHeader.model_fields)
# The columns that hold a time: SQLite keeps them as text (domain.db.UTCDateTime).
TIMES = frozenset({"finished_at", "started_at", "next_retry_at", "handled_at"})


class ListJobs(BaseModel):
    """What a page of the history asks for, checked before anything is read (here, not
    with the payloads: a read command then loads none of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: JobState | None = None
    function: (
        Annotated[str, StringConstraints(max_length=100, pattern=r"^[A-Za-z0-9_:.\-]+$")] | None
    ) = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 20
    # A page's cursor: the jobs that ended before this one (newest first), both or neither.
    before_finished_at: AwareDatetime | None = None
    before_job_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _whole_cursor(self) -> ListJobs:
        if (self.before_finished_at is None) != (self.before_job_id is None):
            raise ValueError("a page cursor needs both before_finished_at and before_job_id")
        return self

    @property
    def before(self) -> tuple[datetime, str] | None:
        if self.before_finished_at is None or self.before_job_id is None:
            return None
        return self.before_finished_at, self.before_job_id


@dataclass(frozen=True)
class Statement:
    """SQL with ``:name`` parameters (no ``::`` cast, no literal holding a colon)."""

    sql: str
    params: Mapping[str, Any]
    # Values to write into the SQL as literals where a statement is prepared once and run
    # many times: a filter on a column of few, unevenly spread values (state, function),
    # whose generic plan, made without the value, can walk the finished_at index past
    # every row looking for a rare one.
    inlined: frozenset[str] = field(default_factory=frozenset)


# Runs a statement; its rows as mappings of column names to values.
Rows = Callable[[Statement], Awaitable[Sequence[Mapping[str, Any]]]]


def columns(names: Sequence[str]) -> str:
    """A SELECT's list of ``names``: the status column as ``state``, its name on every face."""
    return ", ".join("status AS state" if name == "state" else name for name in names)


def recent_statement(
    *, state: str | None, function: str | None, limit: int, before: tuple[datetime, str] | None
) -> Statement:
    """Newest first, each filter served by an index on (filter, finished_at); ``before``
    (a finished_at and job id) is a page's keyset cursor: the jobs after that one."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if before is not None:
        # The first condition is the index's range; the second breaks ties in it.
        where.append("finished_at <= :before_at")
        where.append("(finished_at < :before_at OR job_id < :before_id)")
        params.update(before_at=before[0], before_id=before[1])
    for column, value in (("status", state), ("function", function)):
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    sql = f"SELECT {columns(SUMMARY)} FROM job_records"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY finished_at DESC, job_id DESC LIMIT :limit"
    return Statement(sql, params, frozenset({"status", "function"}))


def failures_statement(limit: int) -> Statement:
    """Failures nobody has handled, newest first, read from their partial index (its own
    text, literals and all: a plan of "status = $1" could not use it)."""
    sql = (
        f"SELECT {columns(HEADER)} FROM job_records WHERE {UNHANDLED_FAILURE} "
        "ORDER BY finished_at DESC LIMIT :limit"
    )
    return Statement(sql, {"limit": limit})


async def recent_jobs(
    rows: Rows,
    *,
    state: str | None,
    function: str | None,
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> list[JobSummary]:
    statement = recent_statement(state=state, function=function, limit=limit, before=before)
    return [JobSummary.model_validate(row) for row in await rows(statement)]


async def unhandled_failures(rows: Rows, limit: int) -> list[JobHeader]:
    return [JobHeader.model_validate(row) for row in await rows(failures_statement(limit))]


def known_statement(job_id: str) -> Statement:
    """A row when the history has the job, or jobs of a submission of that id."""
    sql = (
        "SELECT job_id FROM job_records WHERE job_id = :job_id "
        "UNION ALL SELECT job_id FROM job_records WHERE parent_id = :job_id LIMIT 1"
    )
    return Statement(sql, {"job_id": job_id})


def prefix_statement(prefix: str, limit: int) -> Statement:
    """Jobs whose id, or whose submission's, starts with ``prefix`` (``%`` and ``_`` taken
    literally); at most ``limit``."""
    pattern = prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
    sql = (
        "SELECT job_id, parent_id FROM job_records "
        "WHERE job_id LIKE :pattern ESCAPE '/' OR parent_id LIKE :pattern ESCAPE '/' "
        "LIMIT :limit"
    )
    return Statement(sql, {"pattern": pattern, "limit": limit})


async def is_known(rows: Rows, job_id: str) -> bool:
    return bool(await rows(known_statement(job_id)))


async def ids_starting_with(rows: Rows, prefix: str, limit: int) -> list[str]:
    """Job ids (jobs and submissions) that begin with ``prefix``; at most ``limit``. Asked
    only for a prefix, never on a job's hot path."""
    found: set[str] = set()
    for row in await rows(prefix_statement(prefix, limit)):
        found.update(i for i in (row["job_id"], row["parent_id"]) if i and i.startswith(prefix))
    return sorted(found)[:limit]


# What `dbjobs status` shows of a job the history holds (not its payload, up to 64 KiB).
STANDING = (
    "state",
    "function",
    "result",
    "error_type",
    "error_message",
    "tries",
    "finished_at",
    "next_retry_at",
)


def standing_statement(job_id: str) -> Statement:
    """One row: the job's record as ``dbjobs status`` shows it (nulls when the history has
    none), and whether the job is a submission (it has children, which
    ``domain.progress_queries.submission_of`` adds up)."""
    sql = (
        f"SELECT {columns(STANDING)}, EXISTS "
        "(SELECT 1 FROM job_records WHERE parent_id = :job_id) AS submission "
        "FROM (SELECT 1) AS one LEFT JOIN job_records ON job_id = :job_id"
    )
    return Statement(sql, {"job_id": job_id})


async def job_standing(rows: Rows, job_id: str) -> dict[str, Any] | None:
    """The job's ``STANDING`` and ``submission`` (its result decoded: JSON read as text
    comes back as text); None when the history knows neither the job nor a submission's
    jobs of that id."""
    standing = dict((await rows(standing_statement(job_id)))[0])
    standing["submission"] = bool(standing["submission"])
    if standing["state"] is None and not standing["submission"]:
        return None
    standing["result"] = json_value(standing["result"])
    return standing


def json_value(value: Any) -> Any:
    """A JSON column's value decoded: read as text (SQL text over asyncpg, or SQLite) it
    comes back as text."""
    return json.loads(value) if isinstance(value, str | bytes) else value
