"""The table, the machine it ran on, and where the time goes."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from bench.measure import Row
from bench.profiling import Profile
from worker.settings import Settings


def _figure(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def results_table(rows: Sequence[Row], runs: int) -> Table:
    table = Table(title=f"dbjobs throughput (median of {runs} run{'s' * (runs > 1)})")
    table.add_column("workload")
    table.add_column("median", justify="right")
    table.add_column("unit")
    table.add_column("range", justify="right", style="dim")
    table.add_column("baseline, same run")
    table.add_column("target")
    table.add_column("", justify="center")
    table.add_column("note", style="dim")
    for row in rows:
        spread = f"{_figure(min(row.values))}-{_figure(max(row.values))}" if row.values else ""
        verdict = {"met": "[green]met[/]", "MISSED": "[red]MISSED[/]"}.get(row.verdict, "")
        table.add_row(
            row.workload,
            _figure(row.median),
            row.unit,
            spread,
            row.baseline,
            row.target,
            verdict,
            row.note,
        )
    return table


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_gb:.0f} GB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def settings_line(settings: Settings) -> str:
    return (
        f"worker settings: JOBS_MAX_JOBS={settings.max_jobs} "
        f"JOBS_POLL_DELAY={settings.poll_delay} "
        f"JOBS_GENERATION_CHUNK_SIZE={settings.generation_chunk_size}"
    )


def load_line(label: str) -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {label}: {one:.2f} {five:.2f} {fifteen:.2f}"


def print_profile(console: Console, profile: Profile, top: int) -> None:
    libraries = profile.per_library()
    total = sum(seconds for _, seconds in libraries) or 1.0
    table = Table(title=f"where the time goes: {profile.title}")
    table.add_column("library")
    table.add_column("own time", justify="right")
    table.add_column("share", justify="right")
    if profile.jobs > 1:
        table.add_column(f"per {profile.unit}", justify="right")
    for library, seconds in libraries[:12]:
        cells = [library, f"{seconds:.2f} s", f"{100 * seconds / total:.0f}%"]
        if profile.jobs > 1:
            cells.append(f"{1e6 * seconds / profile.jobs:.0f} us")
        table.add_row(*cells)
    console.print(table)
    if profile.jobs > 1:
        queue, job, other = (f"{1e6 * seconds:,.0f} us" for seconds in profile.split())
        console.print(
            f"per {profile.unit} (under cProfile, so inflated): queue machinery (redis-py, arq, "
            f"asyncio streams, logging) {queue}; the job's own work (SQLAlchemy, asyncpg, "
            f"domain, pydantic) {job}; C calls and the rest {other}"
        )
    console.print(profile.top(top), markup=False, highlight=False)
