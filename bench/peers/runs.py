"""One run of one system: a fresh worker, warmed up by one job, drains N jobs queued at
once; timed from the last enqueue to the last row, then checked for exactly-once.

Timing from the last enqueue keeps each peer's enqueue speed (and the bench's own CPU)
out of the figure: what is measured is one worker draining a full queue. The warm-up
leaves out the worker's start-up (imports, connecting, start-up chores: SAQ sweeps its
active list when it starts, and re-runs jobs it finds there that are not marked active
yet, which jobs queued before the worker started can be).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg

from bench.context import Bench
from bench.cpu import CpuSample, CpuUse, own_cpu_seconds, process_cpu_seconds
from bench.peers.job import CONCURRENCY, Database
from bench.peers.systems import System
from bench.services import reset_redis, truncate_tables
from worker.testing.processes import ROOT, WorkerProcess

POLL_SECONDS = 0.01
WARM_UP = 1  # jobs run before the timed ones
STALL_SECONDS = 60  # no new row for this long: the worker is stuck, the run fails
# Every insert attempt takes an id, a conflicting one too: ids past N mean a job ran twice.
COUNTS = (
    "SELECT count(*) AS rows, count(DISTINCT step) AS steps, coalesce(min(step), -1) AS low, "
    "coalesce(max(step), -1) AS high, coalesce(max(id), 0) AS ids FROM metrics WHERE run_id = $1"
)


class NotExactlyOnce(AssertionError):
    """A system lost or repeated jobs."""


@dataclass(frozen=True)
class Run:
    per_second: float
    cpu: CpuUse  # seconds over the window
    jobs: int  # jobs finished in the window
    violation: str | None = None  # how the run broke exactly-once, if it did
    # PostgreSQL sessions opened and closed again in the window: their CPU went uncounted
    # (a pool that opens and closes connections under load).
    lost_sessions: int = 0

    def ms_per_job(self, seconds: float) -> float:
        return 1000 * seconds / self.jobs


def tree_cpu_seconds(root: int) -> float:
    """CPU of a process and all its descendants (dramatiq forks its worker processes)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    family, grew = {root}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in family} - family
        family |= children
        grew = bool(children)
    return sum(process_cpu_seconds(pid) for pid in family)


class Watcher:
    """One connection that polls progress and samples CPU, leaving itself out of PG's share."""

    def __init__(self, bench: Bench, connection: asyncpg.Connection, redis_pid: int | None):
        self.bench = bench
        self.connection = connection
        self.redis_pid = redis_pid

    async def progress(self) -> int:
        return int(await self.connection.fetchval("SELECT coalesce(max(id), 0) FROM metrics"))

    async def sessions(self) -> int:
        """Sessions ever opened on the bench database (PostgreSQL's count)."""
        return int(
            await self.connection.fetchval(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
        )

    async def measure(self, before: tuple[CpuSample, int], worker: WorkerProcess | None) -> Run:
        """The CPU used since ``before`` (a sample and ``sessions()``), as a run of no jobs
        yet, with the sessions opened meanwhile that are gone already."""
        after = await self.sample(worker)
        opened = await self.sessions() - before[1]
        alive = len(after.postgres.keys() - before[0].postgres.keys())
        return Run(0.0, after.minus(before[0]), 0, lost_sessions=max(0, opened - alive))

    async def sample(self, worker: WorkerProcess | None) -> CpuSample:
        pids = await self.connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            self.bench.services.database,
        )
        return CpuSample(
            workers=tree_cpu_seconds(worker.pid) if worker else own_cpu_seconds(),
            postgres={row["pid"]: process_cpu_seconds(row["pid"]) for row in pids},
            redis=process_cpu_seconds(self.redis_pid) if self.redis_pid else 0.0,
        )


async def _redis_pid(bench: Bench) -> int | None:
    pid = (await bench.pool.info("server")).get("process_id")
    return int(pid) if pid else None


def _start(system: System, bench: Bench) -> WorkerProcess:
    assert system.command is not None
    fd, name = tempfile.mkstemp(prefix=f"bench-{system.key}-", suffix=".log")
    os.close(fd)
    log = Path(name)
    with log.open("wb") as out:
        process = subprocess.Popen(
            system.command, cwd=ROOT, env=bench.env(), stdout=out, stderr=subprocess.STDOUT
        )
    return WorkerProcess(process, log)


def _failure(system: System, worker: WorkerProcess | None, what: str) -> RuntimeError:
    tail = "\n".join(worker.log.splitlines()[-30:]) if worker else ""
    return RuntimeError(f"{system.label}: {what}\n{tail}")


async def _wait_for(system: System, watcher: Watcher, worker: WorkerProcess, ids: int) -> int:
    """Until ``ids`` insert attempts have been made; fails on a stuck or dead worker."""
    seen, last_change = -1, time.monotonic()
    while (done := await watcher.progress()) < ids:
        if done != seen:
            seen, last_change = done, time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            raise _failure(system, worker, f"stuck at {done} of {ids} rows")
        if worker.process.poll() is not None:
            raise _failure(system, worker, f"worker exited ({worker.process.returncode})")
        await asyncio.sleep(POLL_SECONDS)
    return done


async def _until_ready(system: System, bench: Bench, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + STALL_SECONDS
    while system.ready is not None and not await system.ready(bench):
        if worker.process.poll() is not None:
            raise _failure(system, worker, f"worker exited ({worker.process.returncode})")
        if time.monotonic() > deadline:
            raise _failure(system, worker, f"not ready after {STALL_SECONDS} s")
        await asyncio.sleep(POLL_SECONDS)


async def _drain(system: System, watcher: Watcher, worker: WorkerProcess, ids: int) -> Run:
    """From now (every job queued) until the last row: the run in between."""
    first = await watcher.progress()
    before = await watcher.sample(worker), await watcher.sessions()
    opened = time.perf_counter()
    await _wait_for(system, watcher, worker, ids)
    seconds = time.perf_counter() - opened
    run = await watcher.measure(before, worker)
    jobs = ids - first
    return replace(run, per_second=jobs / seconds, jobs=jobs)


async def check_exactly_once(
    bench: Bench, system: System, run_id: int, count: int, warm_up: int
) -> None:
    """Each job's row once, none missing, no job run twice (fails loudly otherwise)."""
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        found = dict(await connection.fetchrow(COUNTS, run_id))
        found["ids"] = await connection.fetchval("SELECT coalesce(max(id), 0) FROM metrics")
    finally:
        await connection.close()
    expected = {"rows": count, "steps": count, "low": 0, "high": count - 1}
    expected["ids"] = count + warm_up
    if found == {**expected, "ids": found["ids"]} and found["ids"] > expected["ids"]:
        repeated = found["ids"] - expected["ids"]
        raise NotExactlyOnce(f"{system.label}: {repeated} of {count} jobs ran twice")
    if found != expected:
        raise NotExactlyOnce(
            f"{system.label}: not exactly once: {found}, expected {expected} "
            "(ids counts insert attempts: more ids than rows means a job ran twice)"
        )
    if system.check is not None:
        await system.check(bench, count + warm_up)


async def _in_process(bench: Bench, watcher: Watcher, run_id: int, count: int) -> Run:
    """The job body called from ``CONCURRENCY`` lanes in this process, no queue."""
    database = Database(bench.services.database_url)
    steps = iter(range(count))

    async def lane() -> None:
        for step in steps:
            await database.insert_metric(run_id, step)

    try:
        before = await watcher.sample(None), await watcher.sessions()
        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
        seconds = time.perf_counter() - started
        run = await watcher.measure(before, None)
    finally:
        await database.dispose()
    return replace(run, per_second=count / seconds, jobs=count)


async def _through_queue(
    bench: Bench, system: System, watcher: Watcher, run_id: int, count: int
) -> Run:
    """A started worker runs one warm-up job (so it is up, connected and past its start-up
    chores), then drains ``count`` jobs queued at once; timed from the last enqueue."""
    warm_run = await bench.new_run()
    worker = _start(system, bench)
    try:
        await _until_ready(system, bench, worker)
        await system.enqueue(bench, warm_run, WARM_UP)
        await _wait_for(system, watcher, worker, WARM_UP)
        await system.enqueue(bench, run_id, count)
        run = await _drain(system, watcher, worker, WARM_UP + count)
        # Let the last jobs' bookkeeping finish before the worker is stopped.
        await asyncio.sleep(0.2)
    finally:
        code = worker.stop(timeout=20)
        log = worker.log
        worker.log_path.unlink(missing_ok=True)
    if code not in system.exit_codes:
        raise RuntimeError(f"{system.label}: worker exited {code}:\n{log[-3000:]}")
    return run


async def run_once(bench: Bench, system: System, count: int) -> Run:
    await truncate_tables(bench.services)
    await reset_redis(bench.services)
    if system.reset is not None:
        await system.reset(bench)
    run_id = await bench.new_run()
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        watcher = Watcher(bench, connection, await _redis_pid(bench))
        if system.command is None:
            result, warm_up = await _in_process(bench, watcher, run_id, count), 0
        else:
            result = await _through_queue(bench, system, watcher, run_id, count)
            warm_up = WARM_UP
    finally:
        await connection.close()
    try:
        await check_exactly_once(bench, system, run_id, count, warm_up)
    except NotExactlyOnce as broken:
        # Kept, shown in its row and failing the bench at the end: one peer's repeats
        # should not throw away the other systems' figures of the same rounds.
        return replace(result, violation=str(broken))
    return result


async def interleaved(bench: Bench, systems: Sequence[System], count: int) -> dict[str, list[Run]]:
    """``bench.runs`` rounds, every system once per round, the order rotated each round."""
    runs: dict[str, list[Run]] = {system.key: [] for system in systems}
    for round_ in range(bench.runs):
        shift = round_ % len(systems)
        for system in [*systems[shift:], *systems[:shift]]:
            runs[system.key].append(await run_once(bench, system, count))
    return runs
