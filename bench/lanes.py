"""``--only lanes``: interactive jobs during a bulk backlog, lanes on against FIFO.

One worker. A generation of ``profiles`` profiles and a file of ``points`` metric points (in
batches of 1,000) are queued, then, a second later, ``interactive`` record_metric jobs at 20
per second. Each interactive job's wait is its enqueue (this process's clock) to its start
(the job history's started_at, the worker's clock: the same machine). Lanes off is
today's FIFO, reproduced by sending the interactive jobs down the bulk lane: one sorted set,
in enqueue order, as the single queue was, with the bulk kinds' caps lifted (a capped kind
is passed over in the claim, which would let the interactive jobs overtake it).

Bulk throughput is the backlog's time alone against its time with the interactive load
(lanes on), each from its enqueue to the end of its last bulk job (the job history's
finished_at); the note says how many interactive jobs came before that end (at a tenth
of the size the backlog may end within the interactive load's second). The worker
measures its event loop's lag meanwhile (``bench.loop_lag``): how late it runs what is
due, which every interactive job's start waits for too. Then the idle worker's rows
(``bench.lanes_idle``).

One run of each, whatever ``--runs`` says: the full size takes minutes.
``--lanes-scale 0.1`` (the default with ``--quick``) runs a tenth of it.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.context import Bench
from bench.lanes_idle import lanes_idle
from bench.measure import Row, start_waits, wait_drained
from bench.processes import LOOP_LAG_SETTINGS, running_workers
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
DRAIN_TIMEOUT = 1_800


@dataclass(frozen=True)
class Backlog:
    waits_ms: list[float]  # each interactive job's enqueue to start
    bulk_seconds: float  # the backlog's enqueue to its last job's end
    lags_ms: list[float]  # the worker's event loop, every STEP_S over the run
    during: int  # interactive jobs enqueued before the backlog's last job ended

    def lag_note(self) -> str:
        lags = self.lags_ms or [float("nan")]
        return (
            f"worker's event loop lag p50 {statistics.median(lags):.0f} ms, "
            f"p99 {_percentile(lags, 0.99):.0f}, max {max(lags):.0f}"
        )


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


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
    lags = Path(tempfile.mkstemp(prefix="bench-loop-lag-", suffix=".json")[1])
    env = {**bench.env(), "BENCH_LOOP_LAG_PATH": str(lags)}
    with running_workers(env, 1, LOOP_LAG_SETTINGS):
        started, started_at = time.perf_counter(), time.time()
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
        await wait_drained(bench.pool, bench.queue, within=DRAIN_TIMEOUT, started=started)
    waits = await start_waits(bench.services.dsn, enqueued) if enqueued else []
    await _refuse_failures(bench.services.dsn)
    ended_at = await _bulk_end(bench.services.dsn)
    during = sum(at < ended_at for at in enqueued.values())
    return Backlog(waits, ended_at - started_at, _read_lags(lags), during)


async def _fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


async def _bulk_end(dsn: str) -> float:
    """When the backlog's last job ended (epoch s, the worker's clock: the same machine)."""
    rows = await _fetch(
        dsn,
        "SELECT max(finished_at) AS ended FROM job_records "
        "WHERE job_id NOT LIKE 'interactive:%' AND job_id NOT LIKE 'cron:%'",
    )
    return float(rows[0]["ended"].timestamp())


async def _refuse_failures(dsn: str) -> None:
    """A backlog whose jobs failed ends early, and its figures would read as a success."""
    failed = await _fetch(
        dsn,
        "SELECT job_id, error_type, error_message FROM job_records "
        "WHERE status <> 'succeeded' LIMIT 3",
    )
    if failed:
        first = failed[0]
        raise RuntimeError(
            f"jobs of the run did not succeed (first: {first['job_id']}, "
            f"{first['error_type']}: {first['error_message']}): its figures would mean nothing"
        )


def _read_lags(path: Path) -> list[float]:
    """What the worker wrote as it stopped; the file removed."""
    try:
        return list(json.loads(path.read_text() or "[]"))
    finally:
        path.unlink()


async def lanes(bench: Bench) -> list[Row]:
    scale = bench.lanes_scale
    alone = await backlog_run(bench, scale, None)
    fifo = await backlog_run(bench, scale, "bulk", fifo=True)
    on = await backlog_run(bench, scale, "interactive")
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
            note=f"{len(on.waits_ms)} jobs at {PER_SECOND}/s, {on.during} before the backlog's "
            f"end (FIFO {fifo.during}); max {max(on.waits_ms):,.0f} ms",
        ),
        Row(
            "  interactive enqueue->start p99",
            "ms",
            [p99],
            baseline=f"FIFO {fifo_p99:,.0f} ms",
            target="<= 250 ms",
            check=lambda value: value <= 250,
            note=f"{on.lag_note()} (FIFO: {fifo.lag_note().split('lag ')[1]})",
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
        *await lanes_idle(bench),
    ]
