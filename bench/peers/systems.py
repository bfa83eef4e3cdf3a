"""The systems compared: how each one's worker starts and how its jobs are queued.

Jobs are queued the way each system's users queue them in bulk (its own client), before
the worker starts; the queuing is not timed. Each job is ``(run_id, step)``: the step is
the job's unique key, so a missing or repeated job shows in the rows.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import version

import asyncpg

from bench.context import Bench
from bench.peers.job import CONCURRENCY, DRAMATIQ_QUEUE, TASK
from bench.queued import RECORDED_METRIC_JOBS, expect_rows, metric_payloads
from worker.ops.enqueue import enqueue_many
from worker.testing.processes import WORKER_SETTINGS

Step = Callable[[Bench], Awaitable[None]]
Enqueue = Callable[[Bench, int, int], Awaitable[None]]
Check = Callable[[Bench, int], Awaitable[None]]
CHUNK = 500  # jobs queued per round trip (or per batch) by the bench
PYTHON = sys.executable


@dataclass(frozen=True)
class System:
    key: str
    label: str
    command: list[str] | None  # the worker process; None: the job body in this process
    enqueue: Enqueue
    reset: Step | None = None  # before each run, beside emptying our tables and Redis db
    # Whether the started worker is past its start-up chores (polled before the warm-up job).
    ready: Callable[[Bench], Awaitable[bool]] | None = None
    check: Check | None = None  # more exactly-once checks of its own
    exit_codes: frozenset[int] = field(default_factory=lambda: frozenset({0}))


async def _nothing(bench: Bench, run_id: int, count: int) -> None:
    return None


async def _gather_chunks(calls: list[Awaitable[object]]) -> None:
    for start in range(0, len(calls), CHUNK):
        await asyncio.gather(*calls[start : start + CHUNK])


async def _enqueue_arq(bench: Bench, run_id: int, count: int) -> None:
    from arq import create_pool
    from arq.connections import RedisSettings

    pool = await create_pool(RedisSettings.from_dsn(bench.services.redis_url))
    try:
        for start in range(0, count, CHUNK):
            steps = range(start, min(start + CHUNK, count))
            await asyncio.gather(*(pool.enqueue_job(TASK, run_id, step) for step in steps))
    finally:
        await pool.aclose()


async def _enqueue_saq(bench: Bench, run_id: int, count: int) -> None:
    from saq import Queue

    queue = Queue.from_url(bench.services.redis_url)
    await queue.connect()
    try:
        for start in range(0, count, CHUNK):
            steps = range(start, min(start + CHUNK, count))
            await asyncio.gather(*(queue.enqueue(TASK, run_id=run_id, step=s) for s in steps))
    finally:
        await queue.disconnect()


async def _saq_swept(bench: Bench) -> bool:
    """SAQ sweeps its active list as it starts, re-running any job there that is not marked
    active yet, as a job it has just taken is: so jobs are queued once the sweep is done
    (its lock key is set), as they are for a worker that has been running a while."""
    return bool(await bench.pool.exists("saq:default:sweep"))


def _send_dramatiq(url: str, run_id: int, count: int) -> None:
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url)
    try:
        broker.declare_queue(DRAMATIQ_QUEUE)
        for step in range(count):
            message = Message(
                queue_name=DRAMATIQ_QUEUE,
                actor_name=TASK,
                args=(run_id, step),
                kwargs={},
                options={},
            )
            broker.enqueue(message)
    finally:
        broker.close()


async def _enqueue_dramatiq(bench: Bench, run_id: int, count: int) -> None:
    await asyncio.to_thread(_send_dramatiq, bench.services.redis_url, run_id, count)


def _procrastinate_app(bench: Bench):  # type: ignore[no-untyped-def]
    from bench.peers.procrastinate_worker import make_app

    return make_app(bench.services.dsn, pool_size=2)


async def _enqueue_procrastinate(bench: Bench, run_id: int, count: int) -> None:
    app = _procrastinate_app(bench)
    async with app.open_async():
        task = app.configure_task(TASK)
        for start in range(0, count, CHUNK):
            steps = range(start, min(start + CHUNK, count))
            await task.batch_defer_async(*({"run_id": run_id, "step": s} for s in steps))


PROCRASTINATE_TABLES = (
    "procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, procrastinate_workers"
)


async def _reset_procrastinate(bench: Bench) -> None:
    """Its schema in the bench database (once), beside ours; its tables emptied."""
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        installed = await connection.fetchval("SELECT to_regclass('procrastinate_jobs')")
    finally:
        await connection.close()
    if installed is None:
        app = _procrastinate_app(bench)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        await connection.execute(f"TRUNCATE {PROCRASTINATE_TABLES} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


async def _enqueue_ours(bench: Bench, run_id: int, count: int) -> None:
    await enqueue_many(bench.pool, "record_metric", metric_payloads(run_id, count))


async def _check_ours(bench: Bench, count: int) -> None:
    await expect_rows(bench, "job_records", count, RECORDED_METRIC_JOBS)


def systems() -> list[System]:
    threads = str(CONCURRENCY)
    return [
        System("direct", "the same coroutine, no queue", None, _nothing),
        System(
            "arq",
            f"arq {version('arq')} (poll 0.01 s)",
            [PYTHON, "-m", "arq", "bench.peers.arq_worker.WorkerSettings"],
            _enqueue_arq,
        ),
        System(
            "saq",
            f"SAQ {version('saq')}",
            [PYTHON, "-m", "saq", "bench.peers.saq_worker.settings"],
            _enqueue_saq,
            ready=_saq_swept,
        ),
        System(
            "dramatiq",
            f"dramatiq {version('dramatiq')} (Redis, AsyncIO)",
            [PYTHON, "-m", "dramatiq", "bench.peers.dramatiq_worker", "-p", "1", "-t", threads],
            _enqueue_dramatiq,
        ),
        System(
            "procrastinate",
            f"procrastinate {version('procrastinate')}",
            [PYTHON, "-m", "bench.peers.procrastinate_worker"],
            _enqueue_procrastinate,
            reset=_reset_procrastinate,
        ),
        System(
            "ours",
            "ours, record_metric, defaults",
            [PYTHON, "-m", "arq", WORKER_SETTINGS],
            _enqueue_ours,
            check=_check_ours,
        ),
    ]
