"""Real workers' heartbeats: each one listed, "stopping" from its SIGTERM on, gone after."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.support.fleet import SLOW_WORKER_SETTINGS, slow_starts, wait_for
from worker.ops.workers import READY, STOPPING, read_roster
from worker.settings import Settings

pytestmark = pytest.mark.e2e

QUEUE = Settings().queue_name
GRACE_S = 20  # more than the job needs: it ends, and so does its worker, after JOB_S
JOB_S = 3


async def test_each_worker_beats_and_a_stopping_one_says_so(workers, pool, run_id):
    stopping, staying = workers.start_many(
        2, SLOW_WORKER_SETTINGS, JOBS_HEARTBEAT_SECONDS="0.5", JOBS_SHUTDOWN_GRACE=str(GRACE_S)
    )
    payload = {"run_id": run_id, "name": "loss", "step": 1, "value": 1.0, "seconds": JOB_S}
    beats = {w.worker_id.rsplit(":", 1)[1]: w for w in (await read_roster(pool, QUEUE)).live}
    assert set(beats) == {str(stopping.pid), str(staying.pid)}
    assert {w.state for w in beats.values()} == {READY}

    assert await pool.enqueue_job("slow_metric", payload, _job_id="job") is not None
    await wait_for(lambda: _started(pool), within=20, what="the job started")
    runner_pid = (await slow_starts(pool))[0][1]
    runner = stopping if runner_pid == stopping.pid else staying
    other = staying if runner is stopping else stopping
    runner.signal(signal.SIGTERM)

    async def runner_says_stopping() -> bool:
        states = {w.worker_id: (w.state, w.running) for w in (await read_roster(pool, QUEUE)).live}
        return states.get(_id_of(states, runner.pid)) == (STOPPING, 1)

    # The job holds the worker until it ends: "stopping" shows while it still runs.
    await wait_for(runner_says_stopping, within=JOB_S, what="the worker says it is stopping")
    assert await asyncio.to_thread(runner.wait, GRACE_S + 15) == 0
    roster = await read_roster(pool, QUEUE)
    assert [w.worker_id.endswith(f":{other.pid}") for w in roster.live] == [True]
    assert roster.live[0].state == READY
    assert roster.lost == []  # it said goodbye


async def _started(pool) -> bool:
    return len(await slow_starts(pool)) == 1


def _id_of(states: dict[str, object], pid: int) -> str:
    return next((worker_id for worker_id in states if worker_id.endswith(f":{pid}")), "")
