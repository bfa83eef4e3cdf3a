"""The workloads, each turning its runs into rows of the table beside its baselines."""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Sequence

from bench import (
    cli_file,
    console,
    console_load,
    direct,
    fleet,
    footprint,
    history,
    lanes,
    lanes_idle,
    metric_history,
    producers,
    queued,
    raw,
    retention,
    tuning,
)
from bench.context import Bench
from bench.cpu import CpuUse
from bench.measure import Row
from bench.queued import QueueRun

Workload = Callable[[Bench], Awaitable[list[Row]]]


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _rates(runs: Sequence[QueueRun]) -> list[float]:
    return [r.per_second for r in runs]


def _cpu_note(runs: Sequence[QueueRun], unit: str = "job") -> str:
    """Median CPU per job of the worker (or this process), PostgreSQL and Redis."""
    per_job = [
        CpuUse(r.cpu.workers / r.jobs, r.cpu.postgres / r.jobs, r.cpu.redis / r.jobs) for r in runs
    ]
    median = CpuUse(
        _median([c.workers for c in per_job]),
        _median([c.postgres for c in per_job]),
        _median([c.redis for c in per_job]),
    )
    return median.per_unit_ms(1).replace("ms:", f"ms/{unit}:")


def _quote(bench: Bench, key: str, label: str) -> str:
    value = bench.baselines.get(key)
    return f"{label} {value:,.0f}/s" if value is not None else ""


async def noop(bench: Bench) -> list[Row]:
    runs = await queued.noop_runs(bench)
    bench.baselines["noop"] = _median(_rates(runs))
    return [Row("arq noop job, 1 worker (ceiling)", "jobs/s", _rates(runs), note=_cpu_note(runs))]


async def record_metric(bench: Bench) -> list[Row]:
    """Queue and direct runs alternate, so each pair shares the machine's mood."""
    through_queue, without_queue = [], []
    for _ in range(bench.runs):
        through_queue.append(await queued.record_metric_run(bench))
        without_queue.append(await direct.direct_record_metric_run(bench))
    ratios = [
        q.per_second / d.per_second for q, d in zip(through_queue, without_queue, strict=True)
    ]
    bench.baselines["record_metric"] = _median(_rates(through_queue))
    direct_rate = _median(_rates(without_queue))
    return [
        Row(
            "record_metric, same work without the queue",
            "jobs/s",
            _rates(without_queue),
            note=_cpu_note(without_queue).replace("worker", "in-process"),
        ),
        Row(
            "record_metric, 1 point/job, through the queue",
            "jobs/s",
            _rates(through_queue),
            baseline=f"without queue {direct_rate:,.0f}/s; {_quote(bench, 'noop', 'noop')}",
            note=_cpu_note(through_queue),
        ),
        Row(
            "  ratio queue / without queue (paired runs)",
            "x",
            ratios,
            target=">= 0.8x",
            check=lambda ratio: ratio >= 0.8,
        ),
    ]


async def record_metrics(bench: Bench) -> list[Row]:
    paired = await queued.record_metrics_runs(bench)
    points = bench.sizes.batch_points
    bench.baselines["record_metrics"] = _median(_rates(paired.jobs))
    copy_rate = _median(_rates(paired.copies))
    return [
        Row(
            f"record_metrics, batches of {points:,}, enqueue to commit",
            "points/s",
            _rates(paired.jobs),
            baseline=_quote(bench, "raw_json", "raw json_to_recordset, 1 conn"),
            target=">= 100,000/s",
            check=lambda value: value >= 100_000,
            note=_cpu_note(paired.jobs, unit=f"{points:,} points"),
        ),
        Row(
            "  raw COPY of the same rows, 1 conn (paired runs)",
            "rows/s",
            _rates(paired.copies),
            note=_cpu_note(paired.copies, unit=f"{points:,} rows").replace("worker", "client"),
        ),
        Row(
            "  ratio job path / raw COPY (paired runs)",
            "x",
            paired.ratios,
            baseline=f"raw COPY {copy_rate:,.0f}/s",
            target=">= 0.8x",
            check=lambda ratio: ratio >= 0.8,
        ),
    ]


async def generate_profiles(bench: Bench) -> list[Row]:
    runs = await queued.generate_profiles_runs(bench)
    count = bench.sizes.profiles
    seconds = [r.seconds for r in runs]
    cpu = runs[len(runs) // 2].cpu
    return [
        Row(
            f"generate_profiles {count:,}, enqueue to last commit",
            "s",
            seconds,
            baseline=_quote(bench, "raw_copy", "raw COPY, 1 conn"),
            target="<= 20 s",
            check=lambda value: value <= 20,
            note=f"{count / _median(seconds):,.0f} profiles/s; CPU s: worker {cpu.workers:.1f}, "
            f"PG {cpu.postgres:.1f}",
        ),
        Row(
            "  worker peak RSS (VmHWM)",
            "MB",
            [r.peak_rss_mb for r in runs],
            target="<= 250 MB",
            check=lambda value: value <= 250,
        ),
    ]


async def enqueue(bench: Bench) -> list[Row]:
    bulk = await producers.python_bulk_rate(bench)
    one_by_one = await producers.python_one_by_one_rate(bench)
    rows = [
        Row(
            "enqueue from Python, worker.ops.enqueue.enqueue_many",
            "jobs/s",
            bulk,
            baseline=f"arq enqueue_job 1 by 1: {_median(one_by_one):,.0f}/s",
            target=">= 30,000/s",
            check=lambda value: value >= 30_000,
        )
    ]
    if producers.cli_available():
        count = bench.sizes.enqueue_jobs
        cli_jobs = await producers.cli_enqueue_rate(bench, count, batch_size=1)
        rows += [
            Row(
                f"enqueue from the CLI, {count:,} one-point jobs",
                "jobs/s",
                cli_jobs,
                baseline=f"Python bulk {_median(bulk):,.0f}/s",
                target=">= 30,000/s",
                check=lambda value: value >= 30_000,
                note="dbjobs enqueue record-metrics --batch-size 1: start to exit",
            ),
        ]
    return rows


async def cli_file_wait(bench: Bench) -> list[Row]:
    """The file's batches through the CLI, timed as a user waits for them."""
    if not producers.cli_available():
        return []
    runs = await cli_file.file_runs(bench)
    median = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
    return [
        Row(
            f"dbjobs enqueue record-metrics --file, {bench.sizes.file_points:,} points, --wait",
            "points/s",
            [r.per_second for r in runs],
            baseline=_quote(bench, "record_metrics", "batches from Python"),
            target=">= 100,000/s",
            check=lambda value: value >= 100_000,
            note=f"start to exit, 1 worker; median run: checked at {median.checked:.1f} s, "
            f"enqueued at {median.enqueued:.1f} s, done at {median.seconds:.1f} s; "
            f"CPU s: CLI {median.cpu:.1f}, worker {median.others.workers:.1f}, "
            f"PG {median.others.postgres:.1f}",
        ),
        Row("  the CLI's peak RSS", "MB", [r.peak_rss_mb for r in runs]),
    ]


async def cli_help(bench: Bench) -> list[Row]:
    if not producers.cli_available():
        return []
    seconds = producers.cli_help_seconds(bench)
    return [Row("dbjobs --help", "s", seconds, target="<= 0.5 s", check=lambda v: v <= 0.5)]


async def raw_inserts(bench: Bench) -> list[Row]:
    results = await raw.rows_per_second(bench)
    bench.baselines["raw_copy"] = _median(results["COPY into metrics"])
    bench.baselines["raw_json"] = _median(results[raw.JSON_METHOD])
    return [
        Row(f"asyncpg {name}, 1 conn", "rows/s", values, note="baseline")
        for name, values in results.items()
    ]


async def idle(bench: Bench) -> list[Row]:
    samples = await footprint.idle_worker(bench)
    seconds = bench.sizes.idle_seconds
    return [
        Row("idle worker RSS", "MB", [s.rss_mb for s in samples]),
        Row(f"idle worker CPU over {seconds:.0f} s", "%", [s.cpu_percent for s in samples]),
    ]


async def scaling(bench: Bench) -> list[Row]:
    """1 and 2 worker processes, alternating, on record_metric."""
    one, two = [], []
    for _ in range(bench.runs):
        one.append(await queued.record_metric_run(bench, workers=1))
        two.append(await queued.record_metric_run(bench, workers=2))
    ratios = [b.per_second / a.per_second for a, b in zip(one, two, strict=True)]
    return [
        Row(
            "record_metric through the queue, 2 workers",
            "jobs/s",
            _rates(two),
            baseline=f"1 worker {_median(_rates(one)):,.0f}/s (paired runs)",
            note=f"2 vs 1: {_median(ratios):.2f}x; {_cpu_note(two)} (both workers)",
        )
    ]


async def peers(bench: Bench) -> list[Row]:
    """The same one-row job on arq, SAQ, dramatiq, procrastinate and ours (bench/peers/)."""
    from bench import peers as group

    group.require()
    from bench.peers.workload import peers as run_peers

    return await run_peers(bench)


# In this order: the raw inserts and the noop ceiling come first, to be quoted beside the
# workloads they bound.
WORKLOADS: dict[str, Workload] = {
    "asyncpg": raw_inserts,
    "noop": noop,
    "record-metric": record_metric,
    "record-metrics": record_metrics,
    "generate-profiles": generate_profiles,
    "enqueue": enqueue,
    "cli-file": cli_file_wait,
    "cli-help": cli_help,
    "idle": idle,
    "scaling": scaling,
    "fleet": fleet.fleet,
    "peers": peers,
    "history": history.history,
    "metric_history": metric_history.metric_history,
    "retention": retention.retention,
    "console": console.console,
    "console-load": console_load.console_load,
    "sweep": tuning.sweep,
    "lanes": lanes.lanes,
    "lanes-idle": lanes_idle.lanes_idle,
}
# ``sweep``, ``console-load`` (it floods the machine on purpose), ``lanes`` (minutes of
# backlog), ``lanes-idle`` (its idle rows alone, two minutes) and ``retention`` (two
# histories seeded, one in a database of its own) run only when named.
ONLY_WHEN_NAMED = ("sweep", "console-load", "lanes", "lanes-idle", "retention")
DEFAULT_WORKLOADS = tuple(name for name in WORKLOADS if name not in ONLY_WHEN_NAMED)
