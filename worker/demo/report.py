"""The demo's report: jobs run, rows written, time taken, as Rich tables."""

from __future__ import annotations

from collections import Counter
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
    async with engine.connect() as connection:
        return {
            table.name: int(await connection.scalar(select(func.count()).select_from(table)) or 0)
            for table in tables
        }


@dataclass(frozen=True)
class Report:
    where: dict[str, str]
    jobs: Counter[tuple[str, str]]  # (job, status): how many
    rows_before: dict[str, int]
    rows_after: dict[str, int]
    timings: list[tuple[str, float]]

    def render(self, console: Console, *, total_seconds: float) -> None:
        console.print()
        console.print(self._jobs_table())
        console.print(self._rows_table())
        console.print(self._time_table(total_seconds))
        where = ", ".join(f"{name}: {place}" for name, place in self.where.items())
        console.print(f"[bold green]Demo complete[/] ({where})")

    def _jobs_table(self) -> Table:
        table = _table("Jobs run", "Job", "Count")
        table.add_column("Status")
        for (function, status), count in self.jobs.items():
            style = STATUS_STYLES.get(status, "")
            table.add_row(function, f"{count:,}", f"[{style}]{status}[/]" if style else status)
        table.add_section()
        table.add_row("total", f"{self.jobs.total():,}", "")
        return table

    def _rows_table(self) -> Table:
        table = _table("Rows written", "Table", "Written", "Rows now")
        for name, now in self.rows_after.items():
            table.add_row(name, f"{now - self.rows_before.get(name, 0):,}", f"{now:,}")
        return table

    def _time_table(self, total_seconds: float) -> Table:
        table = _table("Time taken", "Step", "Seconds")
        for name, seconds in self.timings:
            table.add_row(name, f"{seconds:.2f}")
        table.add_section()
        table.add_row("total (with setup and migrations)", f"{total_seconds:.2f}")
        return table


def _table(title: str, names: str, *numbers: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(names)
    for heading in numbers:
        table.add_column(heading, justify="right")
    return table
