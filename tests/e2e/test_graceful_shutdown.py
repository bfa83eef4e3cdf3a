"""SIGTERM: no new job is picked, short jobs finish within the grace, the rest is re-run."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.support.fleet import (
    SLOW_WORKER_SETTINGS,
    Summary,
    queue_is_empty,
    report,
    results,
    rows,
    slow_starts,
    wait_for,
    wait_for_log,
)

pytestmark = pytest.mark.e2e

GRACE_S = 4
SHORT = ["short:0", "short:1", "short:2"]  # finish well within the grace
LONG = "long"  # still running when the grace ends
LATE = ["late:0", "late:1", "late:2"]  # enqueued after the SIGTERM


def slow_metric(run_id: int, step: int, seconds: float) -> dict[str, object]:
    return {
        "run_id": run_id,
        "name": "loss",
        "step": step,
        "value": 1.0,
        "seconds": seconds,
        "later_seconds": 0.2,
    }


async def enqueue(pool, run_id: int, job_ids: list[str], first_step: int, seconds: float) -> None:
    for offset, job_id in enumerate(job_ids):
        payload = slow_metric(run_id, first_step + offset, seconds)
        assert await pool.enqueue_job("slow_metric", payload, _job_id=job_id) is not None


async def test_sigterm_finishes_short_jobs_and_hands_over_the_rest(
    workers, pool, session_factory, run_id
):
    stopping = workers.start(SLOW_WORKER_SETTINGS, JOBS_SHUTDOWN_GRACE=str(GRACE_S))
    await enqueue(pool, run_id, SHORT, 0, seconds=1.5)
    await enqueue(pool, run_id, [LONG], 10, seconds=600)

    async def all_started() -> bool:
        return len(await slow_starts(pool)) == len(SHORT) + 1

    await wait_for(all_started, within=20, what="jobs started")
    stopping.signal(signal.SIGTERM)
    terminated_at = time.monotonic()
    # The signal is handled by the worker's loop a moment later: jobs enqueued from then on
    # must never start there.
    await asyncio.to_thread(wait_for_log, stopping, "allow_pick_jobs to `False`", timeout=10)
    await enqueue(pool, run_id, LATE, 20, seconds=0.1)

    exit_code = await asyncio.to_thread(stopping.wait, GRACE_S + 10)
    stopped_after = time.monotonic() - terminated_at
    assert exit_code == 0
    assert {job_id for job_id, _, _ in await slow_starts(pool)} == {*SHORT, LONG}  # no late job
    finished = await results(pool, [*SHORT, LONG, *LATE])
    assert set(finished) == set(SHORT)
    assert all(finished[j].success and finished[j].result["inserted"] == 1 for j in SHORT)

    workers.start(SLOW_WORKER_SETTINGS)
    await wait_for(lambda: queue_is_empty(pool), within=30, what="the rest run elsewhere")
    finished = await results(pool, [*SHORT, LONG, *LATE])
    assert all(outcome.success for outcome in finished.values())
    assert finished[LONG].job_try == 2
    starts = await slow_starts(pool)
    assert sorted(job_id for job_id, _, _ in starts) == sorted([*SHORT, LONG, LONG, *LATE])
    assert {pid for job_id, pid, _ in starts if job_id in SHORT} == {stopping.process.pid}
    steps = await rows(
        session_factory, "SELECT step FROM metrics WHERE run_id = :run ORDER BY step", run=run_id
    )
    assert steps == [(0,), (1,), (2,), (10,), (20,), (21,), (22,)]
    history = dict(
        await rows(
            session_factory,
            "SELECT job_id, tries FROM job_records "
            "WHERE function = 'slow_metric' AND status = 'succeeded'",
        )
    )
    assert history == {**dict.fromkeys(SHORT + LATE, 1), LONG: 2}
    print(f"SIGTERM with a {GRACE_S}s grace: the worker exited after {stopped_after:.1f}s")
    report(
        Summary(
            scenario="4. SIGTERM with 4 jobs running, 4 s grace",
            jobs_run=len(SHORT) + 2 + len(LATE),
            faults="SIGTERM; 1 job outlives the grace",
            rows_lost=0,
            rows_doubled=0,
            recovery=f"worker exited {stopped_after:.1f}s after SIGTERM; long job re-run (try 2)",
        )
    )
