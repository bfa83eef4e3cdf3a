"""``--only lanes-idle`` (and the end of ``--only lanes``): one idle worker, with the
doorbell (the defaults) and without it (``JOBS_IDLE_WAIT_SECONDS=0``: a poll every 10 ms).

Pickup: enqueue to start of jobs given one by one to an idle worker. Commands: what it
sends to Redis per second, read with MONITOR (``bench.idle_redis``) over a minute from the
second ``WINDOW_AT_S`` of one, so that the window holds exactly one tick of the
every-minute cron job (its enqueue, a second ahead, its claim, run and end), and broken
down by the part of the worker that sends them; the calls the scripts make inside Redis
are counted apart.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.context import Bench
from bench.idle_redis import Tally, monitor_commands
from bench.measure import Row, start_waits, wait_drained
from bench.processes import WORKER_SETTINGS, running_workers
from bench.services import reset_redis, truncate_tables
from worker.ops.enqueue import enqueue_many
from worker.registry import RECORD_METRIC

PICKUPS = 20
PICKUP_GAP_S = 0.5
MONITOR_S = 60.0  # one cron tick (every minute) in every window
POLLING_MONITOR_S = 10.0
STARTED_S = 2.0  # past the worker's start-up
WINDOW_AT_S = 5.0  # into a minute: the cron tick's enqueue and run are both a minute apart
DOORBELL: dict[str, str] = {}  # the defaults
POLLING = {"idle_wait_seconds": "0"}


async def idle_pickups(bench: Bench, settings: dict[str, str]) -> list[float]:
    """Enqueue to start (ms) of jobs given one by one to an idle worker."""
    await truncate_tables(bench.services)
    await reset_redis(bench.services)
    run_id = await bench.new_run()
    enqueued: dict[str, float] = {}
    with running_workers(bench.env(**settings), 1, WORKER_SETTINGS):
        for n in range(PICKUPS):
            await asyncio.sleep(PICKUP_GAP_S)  # long enough for the worker to be idle again
            job_id = f"idle:{n}"
            payload = {"run_id": run_id, "name": "pickup", "step": n, "value": 0.5}
            enqueued[job_id] = time.time()
            await enqueue_many(bench.pool, RECORD_METRIC.name, [payload], [job_id])
        await wait_drained(bench.pool, bench.queue, within=60, started=time.perf_counter())
    return await start_waits(bench.services.dsn, enqueued)


async def idle_commands(
    bench: Bench, settings: dict[str, str], seconds: float, *, aligned: bool = True
) -> Tally:
    """The Redis commands of one idle worker over ``seconds``, from ``WINDOW_AT_S`` into a
    minute unless not ``aligned``."""
    await reset_redis(bench.services)
    with running_workers(bench.env(**settings), 1, WORKER_SETTINGS):
        await asyncio.sleep(STARTED_S)
        if aligned:
            await asyncio.sleep((WINDOW_AT_S - time.time()) % 60)
        return await monitor_commands(bench.pool, seconds)


async def lanes_idle(bench: Bench) -> list[Row]:
    pickup_on = await idle_pickups(bench, DOORBELL)
    pickup_off = await idle_pickups(bench, POLLING)
    commands_on = await idle_commands(bench, DOORBELL, MONITOR_S)
    commands_off = await idle_commands(bench, POLLING, POLLING_MONITOR_S, aligned=False)
    return [
        Row(
            "idle pickup, enqueue->start p50",
            "ms",
            [statistics.median(pickup_on)],
            baseline=f"polling {statistics.median(pickup_off):.1f} ms",
            target="<= 5 ms",
            check=lambda value: value <= 5,
            note=f"{PICKUPS} jobs, {PICKUP_GAP_S} s apart",
        ),
        Row(
            "idle worker Redis commands",
            "cmd/s",
            [commands_on.per_second],
            baseline=f"polling {commands_off.per_second:.0f}/s",
            target="<= 1/s",
            check=lambda value: value <= 1,
            note=f"MONITOR over {MONITOR_S:.0f} s: {commands_on.breakdown()}",
        ),
    ]
