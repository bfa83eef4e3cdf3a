"""``uv run --group bench python -m bench [--runs N] [--quick] [--only WORKLOAD] [--profile]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict

import uvloop
from rich.console import Console

from bench import profiling, report
from bench.context import Bench, Sizes, open_bench
from bench.measure import Row
from bench.peers import NotRunnable
from bench.services import BenchServices, bench_services
from bench.suite import DEFAULT_WORKLOADS, WORKLOADS


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Throughput of dbjobs against the real PostgreSQL and Redis, with real "
        "worker processes. Creates its own database and Redis logical database and removes "
        "them at the end. Worker settings come from the JOBS_* environment variables.",
    )
    parser.add_argument("--runs", type=int, help="runs per workload (default 5; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one run: a smoke test")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(WORKLOADS),
        metavar="WORKLOAD",
        help=f"run only these (repeatable): {', '.join(WORKLOADS)}; sweep (worker settings "
        "variants, several minutes), lanes (interactive jobs behind a bulk backlog, minutes; "
        "lanes-idle: its idle worker's rows alone) "
        "and console-load (a console process flooded with its "
        "heaviest reads) run only when named; peers (the same job on arq, SAQ, "
        "dramatiq, procrastinate and ours) needs `uv sync --group bench`, and "
        "BENCH_PEERS=ours,arq runs only those systems",
    )
    parser.add_argument(
        "--lanes-scale",
        type=float,
        help="the lanes workload's size as a fraction of 1,000,000 profiles and points "
        "(default 1; 0.1 with --quick)",
    )
    parser.add_argument("--profile", action="store_true", help="also show where the time goes")
    parser.add_argument("--top", type=int, default=25, help="functions listed per profile")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.lanes_scale is not None and not 0 < args.lanes_scale <= 1:
        parser.error("--lanes-scale must be above 0 and at most 1")
    return args


async def run_workloads(bench: Bench, names: Sequence[str], console: Console) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        started = time.perf_counter()
        try:
            with console.status(f"{name} ..."):
                new = await WORKLOADS[name](bench)
        except NotRunnable as missing:
            console.print(f"{name}: not run: {missing}")
            continue
        console.log(f"{name}: {time.perf_counter() - started:.0f} s")
        rows += new
    return rows


async def run_profiles(bench: Bench, console: Console, top: int) -> None:
    for make in (
        profiling.profile_worker,
        profiling.profile_direct,
        profiling.profile_worker_batches,
        profiling.profile_chunk,
    ):
        with console.status(f"profiling {make.__name__} ..."):
            profile = await make(bench)
        report.print_profile(console, profile, top)


async def bench_main(services: BenchServices, args: argparse.Namespace, console: Console) -> None:
    sizes = Sizes.quick() if args.quick else Sizes.full()
    runs = args.runs or (1 if args.quick else 5)
    names = [name for name in WORKLOADS if name in (args.only or DEFAULT_WORKLOADS)]
    async with open_bench(services, sizes, runs) as bench:
        bench.lanes_scale = args.lanes_scale or (0.1 if args.quick else 1.0)
        console.print(report.machine())
        console.print(report.settings_line(bench.settings))
        console.print(report.load_line("at start"))
        rows = await run_workloads(bench, names, console)
        console.print(report.results_table(rows, runs))
        console.print(report.load_line("at end"))
        for failure in bench.failures:
            console.print(f"[red]not exactly once:[/] {failure}")
        if args.json:
            _write_json(args.json, rows)
        if args.profile:
            await run_profiles(bench, console, args.top)
    if bench.failures:
        raise SystemExit(1)


def _write_json(path: str, rows: Sequence[Row]) -> None:
    data = [
        {**asdict(row), "check": None, "median": row.median, "verdict": row.verdict} for row in rows
    ]
    with open(path, "w") as out:
        json.dump(data, out, indent=2)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # Piped into a file the table keeps its columns rather than wrapping at 80.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    with bench_services() as services:
        console.print(f"bench database {services.database}, Redis {services.redis_url}")
        asyncio.Runner(loop_factory=uvloop.new_event_loop).run(bench_main(services, args, console))
