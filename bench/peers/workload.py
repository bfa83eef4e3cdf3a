"""The peers table: per system jobs/s, CPU per job, and ours against each, same rounds."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence

from bench.context import Bench
from bench.measure import Row
from bench.peers import NotRunnable
from bench.peers.runs import Run, interleaved
from bench.peers.systems import System, systems

OURS = "ours"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _cpu_note(runs: Sequence[Run], worker: str) -> str:
    def per_job(part: str) -> float:
        return _median([run.ms_per_job(getattr(run.cpu, part)) for run in runs])

    lost = _median([run.lost_sessions for run in runs])
    sessions = f"{lost:,.0f} PG session{'s' * (lost != 1)}"
    churn = f" (and {sessions} opened and closed, uncounted)" if lost else ""
    return (
        f"CPU ms/job: {worker} {per_job('workers'):.2f}, PG {per_job('postgres'):.2f}{churn}, "
        f"Redis {per_job('redis'):.2f}"
    )


def _ours_against(ours: Sequence[Run], theirs: Sequence[Run]) -> str:
    """Paired by round: each round's runs shared the machine's mood."""
    pairs = list(zip(ours, theirs, strict=True))
    speed = _median([o.per_second / t.per_second for o, t in pairs])
    cpu = _median([o.ms_per_job(o.cpu.workers) / t.ms_per_job(t.cpu.workers) for o, t in pairs])
    return f"ours {speed:.2f}x the rate, {cpu:.2f}x the CPU"


def violations(runs: Sequence[Run]) -> list[str]:
    return [f"round {i}: {run.violation}" for i, run in enumerate(runs, 1) if run.violation]


def rows(table: Sequence[System], runs: dict[str, list[Run]]) -> list[Row]:
    result = []
    for system in table:
        mine = runs[system.key]
        worker = "in-process" if system.command is None else "worker"
        broken = violations(mine)
        result.append(
            Row(
                f"peers: {system.label}",
                "jobs/s",
                [run.per_second for run in mine],
                baseline=""
                if system.key == OURS or OURS not in runs
                else _ours_against(runs[OURS], mine),
                target="exactly once",
                check=lambda _median, clean=not broken: clean,
                note="; ".join([_cpu_note(mine, worker), *broken]),
            )
        )
    return result


def chosen(names: str | None = None) -> list[System]:
    """All systems, or those named in ``BENCH_PEERS`` (comma-separated keys)."""
    every = systems()
    names = os.environ.get("BENCH_PEERS", "") if names is None else names
    if not names.strip():
        return every
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = set(wanted) - {system.key for system in every}
    if unknown:
        keys = ", ".join(system.key for system in every)
        raise NotRunnable(f"BENCH_PEERS: unknown {', '.join(sorted(unknown))} (known: {keys})")
    return [system for system in every if system.key in wanted]


async def peers(bench: Bench, count: int | None = None) -> list[Row]:
    table = chosen()
    runs = await interleaved(bench, table, count or bench.sizes.metric_jobs)
    for system in table:
        bench.failures += violations(runs[system.key])
    return rows(table, runs)
