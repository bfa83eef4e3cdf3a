"""A job longer than its lease runs to the end once; killed, it is back within seconds.

The slow job has arq's 300 s timeout, so arq alone would hold its in-progress key for
310 s: without leases a killed run would come back after five minutes, and with a lease
that was not renewed a second copy would start while the first still runs.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from arq.constants import in_progress_key_prefix

from tests.support.fleet import (
    SLOW_WORKER_SETTINGS,
    Summary,
    report,
    rows,
    slow_starts,
    wait_for,
)
from tests.support.slow_worker import SLOW_TIMEOUT_S

pytestmark = pytest.mark.e2e

# Shorter than the production default (8 s): the tests wait for leases to lapse, and
# leases work the same at any length; what arq alone would do (310 s) stays far off.
LEASE_S = 3.0
RECOVERY_PROMISE_S = 15


def metric(run_id: int, step: int, **timing: float) -> dict[str, object]:
    return {"run_id": run_id, "name": "loss", "step": step, "value": 0.5, **timing}


async def test_long_job_outlives_its_lease_and_returns_fast_after_sigkill(
    workers, pool, session_factory, run_id
):
    assert SLOW_TIMEOUT_S + 10 > 20 * LEASE_S  # arq's own recovery would take minutes
    fleet = workers.start_many(
        3, SLOW_WORKER_SETTINGS, JOBS_MAX_JOBS="1", JOBS_LEASE_SECONDS=str(LEASE_S)
    )
    by_pid = {w.process.pid: w for w in fleet}
    kept = await pool.enqueue_job(
        "slow_metric", metric(run_id, 1, seconds=1.5 * LEASE_S), _job_id="kept"
    )
    await wait_for(lambda: _started(pool, 1), within=20, what="long job started")
    killed = await pool.enqueue_job(
        "slow_metric", metric(run_id, 2, seconds=600, later_seconds=0.5), _job_id="killed"
    )
    await wait_for(lambda: _started(pool, 2), within=20, what="second long job started")
    victim = by_pid[(await slow_starts(pool))[1][1]]
    await asyncio.sleep(1)  # well inside its transaction
    victim.signal(signal.SIGKILL)
    killed_at = time.monotonic()

    ttls, picked_up = await _watch(pool, "kept", killed_at, within=RECOVERY_PROMISE_S)
    print(f"long job killed with {SLOW_TIMEOUT_S}s timeout: picked up in {picked_up:.2f}s")

    assert (await kept.result(timeout=5))["inserted"] == 1
    assert (await killed.result(timeout=20))["inserted"] == 1
    starts = await slow_starts(pool)
    assert [(job_id, tries) for job_id, _, tries in starts] == [
        ("kept", 1),
        ("killed", 1),
        ("killed", 2),
    ]
    assert starts[2][1] != victim.process.pid
    assert 0 < max(ttls) <= LEASE_S * 1000  # a short lease, renewed: never arq's 310 s
    assert picked_up < RECOVERY_PROMISE_S
    assert await rows(
        session_factory, "SELECT step FROM metrics WHERE run_id = :run ORDER BY step", run=run_id
    ) == [(1,), (2,)]
    history = await rows(
        session_factory,
        "SELECT job_id, status, tries, duration_ms FROM job_records "
        "WHERE function = 'slow_metric' ORDER BY job_id",
    )
    assert [(j, s, t) for j, s, t, _ in history] == [
        ("kept", "succeeded", 1),
        ("killed", "succeeded", 2),
    ]
    assert history[0][3] >= 1.5 * LEASE_S * 1000  # not cut short
    report(
        Summary(
            scenario="2. job longer than its lease; SIGKILL mid-job",
            jobs_run=3,
            faults="SIGKILL of the worker running a 300 s-timeout job",
            rows_lost=0,
            rows_doubled=0,
            recovery=f"picked up {picked_up:.1f}s after the kill (arq alone: 310 s)",
        )
    )


async def _started(pool, count: int) -> bool:
    return len(await slow_starts(pool)) >= count


async def _watch(pool, kept_id: str, killed_at: float, *, within: float) -> tuple[list[int], float]:
    """Sample the kept job's lease TTL (ms) until it ends, and time the killed job's restart."""
    ttls: list[int] = []
    picked_up: float | None = None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ttl = await pool.pttl(in_progress_key_prefix + kept_id)
        if ttl >= 0:
            ttls.append(int(ttl))
        if picked_up is None and await _started(pool, 3):
            picked_up = time.monotonic() - killed_at
        if ttl < 0 and picked_up is not None:  # the kept job finished, the killed one is back
            return ttls, picked_up
        await asyncio.sleep(0.1)
    raise AssertionError(f"not done after {within}s: lease TTLs {ttls}, picked up {picked_up}")


async def test_a_claim_orphaned_before_its_job_started_is_recovered_fast(
    workers, pool, session_factory, run_id
):
    """arq claims a job a few ms before it starts; a worker dying then leaves a 310 s claim."""
    workers.start(JOBS_LEASE_SECONDS=str(LEASE_S))
    await pool.psetex(in_progress_key_prefix + "orphaned", (SLOW_TIMEOUT_S + 10) * 1000, b"1")
    orphaned_at = time.monotonic()
    job = await pool.enqueue_job("record_metric", metric(run_id, 7), _job_id="orphaned")
    assert job is not None

    assert (await job.result(timeout=3 * RECOVERY_PROMISE_S))["inserted"] == 1
    recovered = time.monotonic() - orphaned_at

    assert recovered < RECOVERY_PROMISE_S
    assert await rows(
        session_factory, "SELECT step FROM metrics WHERE run_id = :run", run=run_id
    ) == [(7,)]
    report(
        Summary(
            scenario="2b. worker died between arq's claim and the job's start",
            jobs_run=1,
            faults="an orphaned 310 s in-progress claim",
            rows_lost=0,
            rows_doubled=0,
            recovery=f"run {recovered:.1f}s after the claim (arq alone: 310 s)",
        )
    )
