"""The issue's scenario as a user meets it: a second value for a recorded step, through the
CLI, Redis and a worker, is reported as a conflict (value kept), in ``--wait`` output and in
the job history; overwriting is asked for; a finished run refuses late points."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from domain.models import Metric
from domain.repositories import JobRecordRepository
from worker.testing.processes import run_cli

pytestmark = pytest.mark.e2e


def _enqueue(env: dict[str, str], *args: str, code: int = 0) -> tuple[str, str]:
    done = run_cli(["enqueue", *args, "--wait"], env, timeout=90)
    assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout, " ".join(done.stderr.split())  # as one line, however it wrapped


async def _value(session_factory, run_id: int) -> float:
    async with session_factory() as session:
        values = await session.scalars(select(Metric.value).where(Metric.run_id == run_id))
        return values.one()


async def test_a_second_value_for_a_step_is_a_conflict_then_the_finished_run_refuses_points(
    env, worker, run_id, session_factory
):
    run = str(run_id)
    _enqueue(env, "record-metric", run, "loss", "0", "0.93")
    out, err = _enqueue(env, "record-metric", run, "loss", "0", "-0.5", "--job-id", "second")
    assert '"conflicts": 1' in out
    assert "1 point not recorded" in err
    assert "loss step 0 held 0.93, sent -0.5" in err
    assert await _value(session_factory, run_id) == 0.93
    async with session_factory() as session:
        recorded = await JobRecordRepository(session).get("second")
    assert recorded is not None
    assert (recorded.result["conflicts"], recorded.result["duplicates"]) == (1, 0)

    out, err = _enqueue(
        env, "record-metric", run, "loss", "0", "-0.5", "--on-conflict", "overwrite", "--json"
    )
    result = json.loads(out)["result"]
    assert (result["conflicts"], result["overwritten"]) == (1, 1)
    assert await _value(session_factory, run_id) == -0.5

    # Finished, the run refuses a late point past its grace (none here); nothing is written.
    _enqueue(env, "finish-run", run, "--status", "completed")
    _, err = _enqueue(env, "record-metric", run, "loss", "1", "1.0", "--late-seconds", "0", code=1)
    assert f"RunEnded: run {run_id} is completed (ended at" in err
    assert await _value(session_factory, run_id) == -0.5  # still its one point
