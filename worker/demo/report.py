"""The demo's summary: jobs run, rows written, time taken, as Rich tables."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.db import Base

STATUS_STYLES = {"succeeded": "green", "duplicate": "yellow", "failed": "red"}
# The bookkeeping tables last: they are about the jobs, not the data.
LAST_TABLES = ("profile_generations", "profile_generation_chunks", "job_records")


async def count_rows(engine: AsyncEngine) -> dict[str, int]:
    """Rows in every table of the schema: the data first (parents before children)."""
    tables = sorted(
        Base.metadata.sorted_tables,
        key=lambda t: LAST_TABLES.index(t.name) if t.name in LAST_TABLES else -1,
    )
    counts: dict[str, int] = {}
    async with engine.connect() as connection:
        for table in tables:
            statement = select(func.count()).select_from(table)
            counts[table.name] = int(await connection.scalar(statement) or 0)
    return counts


@dataclass(frozen=True)
class Summary:
    where: dict[str, str]
    jobs: list[tuple[str, str, int]]
    rows_before: dict[str, int]
    rows_after: dict[str, int]
    timings: list[tuple[str, float]]


def render(console: Console, summary: Summary, *, total_seconds: float) -> None:
    console.print()
    console.print(_jobs_table(summary.jobs))
    console.print(_rows_table(summary.rows_before, summary.rows_after))
    console.print(_time_table(summary.timings, total_seconds))
    where = ", ".join(f"{name}: {place}" for name, place in summary.where.items())
    console.print(f"[bold green]Demo complete[/] ({where})")


def _jobs_table(jobs: list[tuple[str, str, int]]) -> Table:
    table = Table(title="Jobs run", title_justify="left")
    table.add_column("Job")
    table.add_column("Count", justify="right")
    table.add_column("Status")
    for function, status, count in jobs:
        style = STATUS_STYLES.get(status, "")
        table.add_row(function, f"{count:,}", f"[{style}]{status}[/]" if style else status)
    table.add_section()
    table.add_row("total", f"{sum(count for _, _, count in jobs):,}", "")
    return table


def _rows_table(before: dict[str, int], after: dict[str, int]) -> Table:
    table = Table(title="Rows written", title_justify="left")
    table.add_column("Table")
    table.add_column("Written", justify="right")
    table.add_column("Rows now", justify="right")
    for name, rows in after.items():
        table.add_row(name, f"{rows - before.get(name, 0):,}", f"{rows:,}")
    return table


def _time_table(timings: list[tuple[str, float]], total: float) -> Table:
    table = Table(title="Time taken", title_justify="left")
    table.add_column("Step")
    table.add_column("Seconds", justify="right")
    for name, seconds in timings:
        table.add_row(name, f"{seconds:.2f}")
    table.add_section()
    table.add_row("total (with setup and migrations)", f"{total:.2f}")
    return table
