"""``--only sweep``: record_metric through the queue under other worker settings.

Not part of the default run (it takes several minutes): run it on a quiet machine before
changing a default in worker/settings.py. Variants alternate run by run, so a noisy
neighbour spreads over all of them.
"""

from __future__ import annotations

import statistics

from bench import queued
from bench.context import Bench
from bench.measure import Row
from bench.queued import QueueRun

VARIANTS: tuple[dict[str, str], ...] = (
    {},  # the defaults
    {"max_jobs": "10"},
    {"max_jobs": "25"},
    {"max_jobs": "100", "db_pool_size": "20"},
    {"db_pool_size": "20"},
    {"poll_delay": "0.005"},
    {"poll_delay": "0.05"},
    {"log_each_job": "false"},
    {"db_pre_ping": "true"},
)


def _label(variant: dict[str, str]) -> str:
    if not variant:
        return "defaults"
    return " ".join(f"JOBS_{name.upper()}={value}" for name, value in variant.items())


async def sweep(bench: Bench) -> list[Row]:
    results: dict[str, list[QueueRun]] = {_label(v): [] for v in VARIANTS}
    defaults = bench.env
    try:
        for _ in range(bench.runs):
            for variant in VARIANTS:
                bench.env = lambda v=variant, **given: defaults(**{**v, **given})  # type: ignore[method-assign]
                results[_label(variant)].append(await queued.record_metric_run(bench))
    finally:
        bench.env = defaults  # type: ignore[method-assign]
    rows = []
    for label, runs in results.items():
        cpu = statistics.median(r.cpu_ms_per_job for r in runs)
        rows.append(
            Row(
                f"record_metric via queue, {label}",
                "jobs/s",
                [r.per_second for r in runs],
                note=f"worker CPU {cpu:.2f} ms/job",
            )
        )
    return rows
