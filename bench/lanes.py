"""``--only lanes``: interactive jobs during a bulk backlog, lanes on against FIFO.

One worker. A generation of ``profiles`` profiles and a file of ``points`` metric points (in
batches of 1,000) are queued, then, a second later, ``interactive`` record_metric jobs at 20
per second. Each interactive job's wait is its enqueue (this process's clock) to its start
(the job history's started_at, the worker's clock: the same machine). Lanes off is
today's FIFO, reproduced by sending the interactive jobs down the bulk lane: one sorted set,
in enqueue order, as the single queue was, with the bulk kinds' caps lifted (a capped kind
is passed over in the claim, which would let the interactive jobs overtake it). Bulk
throughput is the backlog's time alone against its time with the interactive load (lanes
on). Idle: pickup (enqueue to start of a
job given to an idle worker) and the Redis commands an idle worker sends per second
(MONITOR on the bench's logical database, commands run inside scripts not counted), with
the doorbell and without it (``JOBS_IDLE_WAIT_SECONDS=0``: a poll every 10 ms).

One run of each, whatever ``--runs`` says: the full size takes minutes.
``--lanes-scale 0.1`` (the default with ``--quick``) runs a tenth of it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from bench.context import Bench
from bench.measure import Row, wait_drained
from bench.processes import WORKER_SETTINGS, running_workers
from bench.queued import batch_payloads
from bench.services import reset_redis, truncate_tables
from worker.lanes import Lane
from worker.ops.controls import MAX_LIMIT, set_limit
from worker.ops.enqueue import enqueue_many
from worker.registry import GENERATE_PROFILES, RECORD_METRIC, RECORD_METRICS, default_limits

PROFILES = 1_000_000
POINTS = 1_000_000
BATCH_POINTS = 1_000
INTERACTIVE = 200
PER_SECOND = 20
HEAD_START_S = 1.0
IDLE_PICKUPS = 20
IDLE_GAP_S = 0.5
MONITOR_S = 10.0
DRAIN_TIMEOUT = 1_800


@dataclass(frozen=True)
class Backlog:
    waits_ms: list[float]  # each interactive job's enqueue to start
    bulk_seconds: float  # the backlog's enqueue to the last job's end


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def _starts(bench: Bench, job_ids: Sequence[str]) -> dict[str, datetime]:
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        rows = await connection.fetch(
            "SELECT job_id, started_at FROM job_records WHERE job_id = ANY($1::text[])",
            list(job_ids),
        )
    finally:
        await connection.close()
    return {row["job_id"]: row["started_at"] for row in rows}


async def _interactive(bench: Bench, run_id: int, count: int, lane: Lane) -> dict[str, float]:
    """``count`` record_metric jobs at PER_SECOND; each one's enqueue time (epoch s)."""
    enqueued: dict[str, float] = {}
    started = time.perf_counter()
    for n in range(count):
        job_id = f"interactive:{n}"
        payload = {"run_id": run_id, "name": "latency", "step": n, "value": 0.5}
        enqueued[job_id] = time.time()
        await enqueue_many(bench.pool, RECORD_METRIC.name, [payload], [job_id], lane=lane)
        await asyncio.sleep(max(0.0, started + (n + 1) / PER_SECOND - time.perf_counter()))
    return enqueued


async def _waits(bench: Bench, enqueued: dict[str, float]) -> list[float]:
    starts = await _starts(bench, list(enqueued))
    missing = set(enqueued) - set(starts)
    if missing:
        raise RuntimeError(f"{len(missing)} interactive jobs have no record")
    return [1000 * (starts[job_id].timestamp() - at) for job_id, at in enqueued.items()]


async def backlog_run(
    bench: Bench, scale: float, interactive_lane: Lane | None, *, fifo: bool = False
) -> Backlog:
    """The backlog, with the interactive load in ``interactive_lane`` (None: no load)."""
    await truncate_tables(bench.services)
    await reset_redis(bench.services)
    if fifo:
        for name in default_limits():
            await set_limit(bench.pool, bench.queue, name, MAX_LIMIT)
    run_id = await bench.new_run()
    profiles, batches = int(PROFILES * scale), int(POINTS * scale) // BATCH_POINTS
    with running_workers(bench.env(), 1, WORKER_SETTINGS):
        started = time.perf_counter()
        generation = {"count": profiles, "key": f"lanes-{interactive_lane}"}
        await enqueue_many(bench.pool, GENERATE_PROFILES.name, [generation])
        await enqueue_many(
            bench.pool, RECORD_METRICS.name, iter(batch_payloads(run_id, batches, BATCH_POINTS))
        )
        enqueued: dict[str, float] = {}
        if interactive_lane is not None:
            await asyncio.sleep(max(0.0, started + HEAD_START_S - time.perf_counter()))
            count = max(20, int(INTERACTIVE * scale))
            enqueued = await _interactive(bench, run_id, count, interactive_lane)
        seconds = await wait_drained(bench.pool, bench.queue, within=DRAIN_TIMEOUT, started=started)
    return Backlog(await _waits(bench, enqueued) if enqueued else [], seconds)


async def idle_pickups(bench: Bench, idle_wait: str) -> list[float]:
    """Enqueue to start (ms) of jobs given one by one to an idle worker."""
    await truncate_tables(bench.services)
    await reset_redis(bench.services)
    run_id = await bench.new_run()
    enqueued: dict[str, float] = {}
    with running_workers(bench.env(idle_wait_seconds=idle_wait), 1, WORKER_SETTINGS):
        for n in range(IDLE_PICKUPS):
            await asyncio.sleep(IDLE_GAP_S)  # long enough for the worker to be idle again
            job_id = f"idle:{n}"
            payload = {"run_id": run_id, "name": "pickup", "step": n, "value": 0.5}
            enqueued[job_id] = time.time()
            await enqueue_many(bench.pool, RECORD_METRIC.name, [payload], [job_id])
        await wait_drained(bench.pool, bench.queue, within=60, started=time.perf_counter())
    return await _waits(bench, enqueued)


async def idle_commands(bench: Bench, idle_wait: str) -> float:
    """Redis commands per second from one idle worker (its scripts' own calls not counted)."""
    await reset_redis(bench.services)
    database = bench.pool.connection_pool.connection_kwargs.get("db", 0)
    with running_workers(bench.env(idle_wait_seconds=idle_wait), 1, WORKER_SETTINGS):
        await asyncio.sleep(2.0)  # past its start-up
        count = 0
        deadline = time.perf_counter() + MONITOR_S
        async with bench.pool.monitor() as monitor:
            while (left := deadline - time.perf_counter()) > 0:
                try:
                    command = await asyncio.wait_for(monitor.next_command(), timeout=left)
                except TimeoutError:
                    break
                if int(command.get("db", -1)) == database and command.get("client_type") != "lua":
                    count += 1
    return count / MONITOR_S


async def lanes(bench: Bench) -> list[Row]:
    scale = bench.lanes_scale
    alone = await backlog_run(bench, scale, None)
    fifo = await backlog_run(bench, scale, "bulk", fifo=True)
    on = await backlog_run(bench, scale, "interactive")
    pickup_on = await idle_pickups(bench, "2")
    pickup_off = await idle_pickups(bench, "0")
    commands_on = await idle_commands(bench, "2")
    commands_off = await idle_commands(bench, "0")
    size = f"{int(PROFILES * scale):,} profiles + {int(POINTS * scale):,} points queued"
    p50, p99 = statistics.median(on.waits_ms), _percentile(on.waits_ms, 0.99)
    fifo_p50, fifo_p99 = statistics.median(fifo.waits_ms), _percentile(fifo.waits_ms, 0.99)
    return [
        Row(
            f"interactive enqueue->start p50, {size}",
            "ms",
            [p50],
            baseline=f"FIFO {fifo_p50:,.0f} ms",
            target="<= 20 ms",
            check=lambda value: value <= 20,
            note=f"{len(on.waits_ms)} jobs at {PER_SECOND}/s; max {max(on.waits_ms):,.0f} ms",
        ),
        Row(
            "  interactive enqueue->start p99",
            "ms",
            [p99],
            baseline=f"FIFO {fifo_p99:,.0f} ms",
            target="<= 250 ms",
            check=lambda value: value <= 250,
        ),
        Row(
            "  bulk throughput with the interactive load, vs alone",
            "x",
            [alone.bulk_seconds / on.bulk_seconds],
            baseline=f"FIFO {alone.bulk_seconds / fifo.bulk_seconds:.2f}x",
            target=">= 0.9x",
            check=lambda value: value >= 0.9,
            note=f"backlog alone {alone.bulk_seconds:.1f} s, lanes {on.bulk_seconds:.1f} s, "
            f"FIFO {fifo.bulk_seconds:.1f} s",
        ),
        Row(
            "idle pickup, enqueue->start p50",
            "ms",
            [statistics.median(pickup_on)],
            baseline=f"polling {statistics.median(pickup_off):.1f} ms",
            target="<= 5 ms",
            check=lambda value: value <= 5,
            note=f"{IDLE_PICKUPS} jobs, {IDLE_GAP_S} s apart",
        ),
        Row(
            "idle worker Redis commands",
            "cmd/s",
            [commands_on],
            baseline=f"polling {commands_off:.0f}/s",
            target="<= 1/s",
            check=lambda value: value <= 1,
            note=f"MONITOR over {MONITOR_S:.0f} s",
        ),
    ]
