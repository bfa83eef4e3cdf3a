"""Worker fleets of the end-to-end tests that break things, bounded waits, queue and table
probes, and the one-line summary each reliability scenario reports."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis
from arq.constants import result_key_prefix
from arq.jobs import deserialize_result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import schemas, services
from domain.uow import SqlAlchemyUnitOfWork
from tests.support.slow_worker import STARTS_KEY
from worker.lanes import lane_queues
from worker.serialization import deserialize
from worker.settings import Settings
from worker.testing.processes import (
    READY_LINE,
    ROOT,
    WORKER_SETTINGS,
    WorkerProcess,
    launch_worker,
    wait_for_log,
)

SLOW_WORKER_SETTINGS = "tests.support.slow_worker.WorkerSettings"
SLOW_CLAIMING_SETTINGS = "tests.support.slow_worker.ClaimingWorkerSettings"
OFTEN_DRAINING_SETTINGS = "tests.support.slow_worker.OftenDrainingSettings"
# The two ways to start the worker, with arq's --burst: run what is queued, then exit.
BURST_COMMANDS = {
    "dbjobs worker": [sys.executable, "-m", "worker.cli", "worker", "--burst"],
    "arq": [sys.executable, "-m", "arq", WORKER_SETTINGS, "--burst"],
}


def burst(command: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """A worker process that runs what is queued, then exits."""
    return subprocess.run(
        command, cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=90, check=False
    )


async def wait_for(
    check: Callable[[], Awaitable[bool]], *, within: float, what: str, interval: float = 0.1
) -> float:
    """Poll ``check`` until it holds; returns the seconds it took, fails after ``within`` s."""
    began = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - began
        if time.monotonic() - began > within:
            raise AssertionError(f"{what}: not reached within {within}s")
        await asyncio.sleep(interval)


async def results(pool: ArqRedis, job_ids: list[str]) -> dict[str, Any]:
    """The stored arq result (value or ``JobError``) of each finished job, by job id."""
    found: dict[str, Any] = {}
    for start in range(0, len(job_ids), 1000):
        batch = job_ids[start : start + 1000]
        async with pool.pipeline(transaction=False) as pipe:
            for job_id in batch:
                pipe.get(result_key_prefix + job_id)
            raw = await pipe.execute()
        for job_id, value in zip(batch, raw, strict=True):
            if value is not None:
                found[job_id] = deserialize_result(value, deserializer=deserialize)
    return found


async def enqueue_metrics(pool: ArqRedis, run_id: int, steps: range, prefix: str) -> list[str]:
    """One ``record_metric`` job per step, job id ``<prefix>:<step>``; returns the ids."""
    ids = [f"{prefix}:{step}" for step in steps]
    for start in range(0, len(ids), 500):
        batch = [
            pool.enqueue_job(
                "record_metric",
                {"run_id": run_id, "name": "loss", "step": step, "value": step / 10},
                _job_id=f"{prefix}:{step}",
            )
            for step in steps[start : start + 500]
        ]
        assert all(job is not None for job in await asyncio.gather(*batch))
    return ids


async def start_a_run(factory: async_sessionmaker[AsyncSession]) -> int:
    """A running run (of an experiment of a new profile) to record metrics against."""

    async def use(use_case: Any, payload: Any) -> Any:
        async with SqlAlchemyUnitOfWork(factory) as uow:
            return await use_case(uow, payload)

    owner = await use(
        services.create_profile,
        schemas.CreateProfile(username="ada", email="ada@example.com", full_name="Ada L"),
    )
    experiment = await use(
        services.create_experiment, schemas.CreateExperiment(owner_id=owner.id, name="exp")
    )
    run = await use(services.start_run, schemas.StartRun(experiment_id=experiment.id))
    return int(run.id)


async def scalar(factory: async_sessionmaker[AsyncSession], sql: str, **params: Any) -> Any:
    async with factory() as session:
        return await session.scalar(text(sql), params)


async def rows(factory: async_sessionmaker[AsyncSession], sql: str, **params: Any) -> list[Any]:
    async with factory() as session:
        return list((await session.execute(text(sql), params)).all())


@asynccontextmanager
async def table_locked(
    factory: async_sessionmaker[AsyncSession], table: str
) -> AsyncIterator[None]:
    """Hold ``table`` in SHARE mode for the block: reads go on, every write to it waits.

    A transaction that must write there cannot commit meanwhile, so a test can stop work
    at a known point before its commit instead of racing it.
    """
    async with factory() as session, session.begin():
        await session.execute(text(f"LOCK TABLE {table} IN SHARE MODE"))
        yield


async def queue_is_empty(pool: ArqRedis) -> bool:
    """No job in any lane."""
    counts = [await pool.zcard(queue) for queue in lane_queues(Settings().queue_name)]
    return sum(int(count) for count in counts) == 0


async def slow_starts(pool: ArqRedis) -> list[tuple[str, int, int]]:
    """(job id, worker pid, try) of every start of a slow test job, in order."""
    entries = await pool.lrange(STARTS_KEY, 0, -1)
    parsed = []
    for entry in entries:
        job_id, pid, tries = entry.decode().rsplit("|", 2)
        parsed.append((job_id, int(pid), int(tries)))
    return parsed


@dataclass
class Fleet:
    """Worker processes of one test; all of them are ended when the test ends."""

    env: Mapping[str, str]
    log_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start(self, settings: str = WORKER_SETTINGS, **extra_env: str) -> WorkerProcess:
        return self.start_many(1, settings, **extra_env)[0]

    def start_many(
        self, count: int, settings: str = WORKER_SETTINGS, **extra_env: str
    ) -> list[WorkerProcess]:
        """Launch ``count`` workers at once, then wait until each one is ready."""
        started = [self.launch(settings, **extra_env) for _ in range(count)]
        for worker in started:
            wait_for_log(worker, READY_LINE, timeout=30)
        return started

    def launch(self, settings: str = WORKER_SETTINGS, **extra_env: str) -> WorkerProcess:
        """Start a worker process without waiting for it to be ready."""
        log_path = self.log_dir / f"worker-{len(self.workers)}.log"
        worker = launch_worker({**self.env, **extra_env}, log_path, settings)
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.signal(signal.SIGKILL)
        for worker in self.workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.process.kill()


@contextmanager
def fleet(env: Mapping[str, str], log_dir: Path) -> Iterator[Fleet]:
    workers = Fleet(env, log_dir)
    try:
        yield workers
    finally:
        workers.stop_all()


@dataclass(frozen=True)
class Summary:
    scenario: str
    jobs_run: int
    faults: str
    rows_lost: int
    rows_doubled: int
    recovery: str = "-"

    def line(self) -> str:
        return (
            f"RELIABILITY | {self.scenario} | jobs run: {self.jobs_run} | faults: {self.faults} "
            f"| rows lost: {self.rows_lost} | rows doubled: {self.rows_doubled} "
            f"| recovery: {self.recovery}"
        )


SUMMARIES: list[Summary] = []


def report(summary: Summary) -> None:
    SUMMARIES.append(summary)
    print(summary.line())
