"""Where the time goes: cProfile of the hot paths, per function and per library.

- the worker process itself (``bench.profiled``: the real worker settings, profiled from
  startup to shutdown) running ``record_metric`` jobs, then ``record_metrics`` batches:
  arq, redis-py, our adapter, SQLAlchemy, asyncpg, in one picture;
- the same jobs in-process without the queue (what the ratio compares against);
- one ``generate_profiles_chunk`` in-process: generating rows versus COPY.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.context import Bench
from bench.direct import run_direct
from bench.processes import PROFILED_SETTINGS, start_worker, stop_worker
from bench.queued import batch_payloads, metric_payloads, timed_jobs
from bench.services import reset_redis, truncate_tables
from domain import schemas, services
from worker.bootstrap import Services

PROFILE_JOBS = 3000
PROFILE_BATCHES = 100


# Libraries that move jobs (queue, protocol, event loop streams, arq's log lines) versus
# the ones that do a job's database work; the rest (C calls, socket writes) serve both.
QUEUE_LIBRARIES = frozenset({"redis", "arq", "asyncio (stdlib)", "logging (stdlib)"})
JOB_LIBRARIES = frozenset({"sqlalchemy", "asyncpg", "domain/ (ours)", "pydantic", "orjson"})


@dataclass(frozen=True)
class Profile:
    title: str
    jobs: int
    stats: pstats.Stats
    unit: str = "job"

    def split(self) -> tuple[float, float, float]:
        """Own time per unit (seconds) in queue machinery, in the job's own work, elsewhere."""
        queue = job = other = 0.0
        for library, seconds in self.per_library():
            if library in QUEUE_LIBRARIES:
                queue += seconds
            elif library in JOB_LIBRARIES:
                job += seconds
            else:
                other += seconds
        return queue / self.jobs, job / self.jobs, other / self.jobs

    def per_library(self) -> list[tuple[str, float]]:
        """Own time (tottime) summed per library, largest first."""
        totals: dict[str, float] = defaultdict(float)
        for (filename, _line, _name), (_cc, _nc, own, _cum, _callers) in self.stats.stats.items():  # type: ignore[attr-defined]
            totals[library_of(filename)] += own
        return sorted(totals.items(), key=lambda item: -item[1])

    def top(self, count: int) -> str:
        out = io.StringIO()
        self.stats.stream = out  # type: ignore[attr-defined]
        self.stats.sort_stats("tottime").print_stats(count)
        return out.getvalue()


def library_of(filename: str) -> str:
    if filename == "~" or filename.startswith("<"):
        return "builtins / C"
    parts = filename.replace(os.sep, "/").split("/")
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    for ours in ("domain", "worker", "bench"):
        if ours in parts:
            return f"{ours}/ (ours)"
    module = parts[-2] if parts[-1] == "__init__.py" else parts[-1].removesuffix(".py")
    return f"{'asyncio' if 'asyncio' in parts else module} (stdlib)"


async def profile_worker(bench: Bench) -> Profile:
    """The real worker process under cProfile, running ``PROFILE_JOBS`` record_metric jobs."""
    run_id = await _fresh_run(bench)
    stats = await _worker_stats(bench, "record_metric", metric_payloads(run_id, PROFILE_JOBS))
    return Profile("worker process, record_metric through the queue", PROFILE_JOBS, stats)


async def profile_worker_batches(bench: Bench) -> Profile:
    """The worker process under cProfile, running record_metrics batches of 1,000 points."""
    run_id = await _fresh_run(bench)
    payloads = batch_payloads(run_id, PROFILE_BATCHES, bench.sizes.batch_points)
    stats = await _worker_stats(bench, "record_metrics", payloads)
    title = f"worker process, record_metrics batches of {bench.sizes.batch_points:,}"
    return Profile(title, PROFILE_BATCHES, stats, unit="batch")


async def _fresh_run(bench: Bench) -> int:
    await truncate_tables(bench.services)
    await reset_redis(bench.services)
    return await bench.new_run()


async def _worker_stats(
    bench: Bench, function: str, payloads: Sequence[dict[str, Any]]
) -> pstats.Stats:
    fd, path = tempfile.mkstemp(prefix="bench-worker-", suffix=".prof")
    os.close(fd)
    worker = start_worker({**bench.env(), "BENCH_PROFILE_PATH": path}, PROFILED_SETTINGS)
    try:
        await timed_jobs(bench, function, payloads)
    finally:
        stop_worker(worker)  # SIGTERM: arq runs on_shutdown, which writes the stats
    try:
        return pstats.Stats(path)
    finally:
        os.unlink(path)


async def profile_direct(bench: Bench) -> Profile:
    await truncate_tables(bench.services)
    run_id = await bench.new_run()
    settings = bench.settings
    services = Services.for_worker(settings, bench.pool)
    try:
        await run_direct(services, metric_payloads(run_id, 200), settings.max_jobs)  # warm up
        payloads = [{**p, "step": p["step"] + 1000} for p in metric_payloads(run_id, PROFILE_JOBS)]
        profiler = cProfile.Profile()
        profiler.enable()
        await run_direct(services, payloads, settings.max_jobs)
        profiler.disable()
    finally:
        await services.close()
    return Profile(
        "in-process, record_metric without the queue", PROFILE_JOBS, pstats.Stats(profiler)
    )


async def profile_chunk(bench: Bench, chunk_size: int = 10_000) -> Profile:
    """One generation chunk in-process: fake rows, COPY, the chunk's idempotency key."""
    await truncate_tables(bench.services)
    async with bench.unit_of_work() as uow:
        plan = await services.start_generation(
            uow, schemas.GenerateProfiles(count=chunk_size * 2, chunk_size=chunk_size, key="prof")
        )
    profiler = cProfile.Profile()
    for index in range(plan.chunks):
        async with bench.unit_of_work() as uow:
            payload = schemas.GenerateChunk(generation_id=plan.generation_id, chunk_index=index)
            if index:
                profiler.enable()
            await services.generate_chunk(uow, payload)
            profiler.disable()
    return Profile(
        f"in-process, one generate_profiles_chunk of {chunk_size:,}", 1, pstats.Stats(profiler)
    )
