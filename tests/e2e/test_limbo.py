"""No job left in limbo: a try that times out, a job arq fails before it runs, and a
running job an operator cancels all end in the history, with their reason."""

from __future__ import annotations

import asyncio
import json

import pytest
from arq.jobs import Job

from domain.db import utcnow
from domain.repositories import JobStamp
from domain.uow import SqlAlchemyUnitOfWork
from tests.support.fleet import SLOW_CLAIMING_SETTINGS, rows, slow_starts, wait_for
from worker.runtime.endings import ABORTED, ARQ_GAVE_UP
from worker.serialization import JobError, deserialize
from worker.testing.processes import run_cli

pytestmark = pytest.mark.e2e

HISTORY = (
    "SELECT job_id, status, tries, error_type FROM job_records "
    "WHERE job_id LIKE :prefix ORDER BY job_id"
)


def metric(run_id: int, step: int, **timing: float) -> dict[str, object]:
    return {"run_id": run_id, "name": "loss", "step": step, "value": 0.5, **timing}


async def _history(session_factory, prefix: str) -> list[tuple[str, str, int, str | None]]:
    return [tuple(row) for row in await rows(session_factory, HISTORY, prefix=prefix + "%")]


async def test_a_try_that_times_out_is_retried_then_fails_with_its_reason(
    workers, pool, session_factory, run_id
):
    workers.start(SLOW_CLAIMING_SETTINGS, JOBS_MAX_TRIES="2", JOBS_RETRY_BASE_DELAY="0.2")
    await pool.enqueue_job("timed_metric", metric(run_id, 1, seconds=60, later_seconds=0),
                           _job_id="timeout:then-done")  # fmt: skip
    await pool.enqueue_job("timed_metric", metric(run_id, 2, seconds=60, later_seconds=60),
                           _job_id="timeout:twice")  # fmt: skip

    async def ended() -> bool:
        found = await _history(session_factory, "timeout:")
        return {status for _, status, _, _ in found} <= {"succeeded", "failed"} and len(found) == 2

    await wait_for(ended, within=30, what="both timed jobs at their end in the history")
    assert await _history(session_factory, "timeout:") == [
        ("timeout:then-done", "succeeded", 2, None),
        ("timeout:twice", "failed", 2, "JobTimedOut"),
    ]
    [(message,)] = await rows(
        session_factory, "SELECT error_message FROM job_records WHERE job_id = 'timeout:twice'"
    )
    assert message.startswith("timed_metric ran longer than its 2 s timeout")
    tries = await rows(
        session_factory, "SELECT job_id, try_number, error_type FROM job_tries ORDER BY job_id"
    )
    assert [tuple(t) for t in tries] == [
        ("timeout:then-done", 1, "JobTimedOut"),
        ("timeout:twice", 1, "JobTimedOut"),
    ]
    # A timed-out try's transaction rolled back: only the try that finished wrote its point.
    assert await rows(
        session_factory, "SELECT step FROM metrics WHERE run_id = :run", run=run_id
    ) == [(1,)]
    failed = await Job("timeout:twice", pool, _deserializer=deserialize).result_info()
    assert failed is not None
    assert isinstance(failed.result, JobError)
    assert failed.result.type_name == "JobTimedOut"


async def test_a_job_arq_fails_before_it_runs_is_recorded_as_failed(workers, pool, session_factory):
    """Its tries were spent by deliveries that died with their worker: arq fails it at the
    next start without running it. The history said `retrying` from its last written try."""
    async with SqlAlchemyUnitOfWork(session_factory) as uow:
        stamp = JobStamp("spent", "create_profile", 7, utcnow(), worker="w:gone")
        await uow.jobs.record_retry(stamp, error_type="ConnectionResetError",
                                    message="reset", payload=None, retry_at=utcnow())  # fmt: skip
        await uow.commit()
    workers.start()
    profile = {"username": "ada", "email": "ada@example.com", "full_name": "Ada L"}
    await pool.enqueue_job("create_profile", profile, _job_id="spent", _job_try=9)

    async def failed() -> bool:
        return [s for _, s, _, _ in await _history(session_factory, "spent")] == ["failed"]

    await wait_for(failed, within=10, what="the job recorded as failed")
    [(tries, error_type, message, payload)] = await rows(
        session_factory,
        "SELECT tries, error_type, error_message, payload FROM job_records",
    )
    assert (tries, error_type) == (9, "JobExecutionFailed")
    assert message == f"max 8 retries exceeded: {ARQ_GAVE_UP}"
    assert payload == profile  # so that `jobs retry spent` can run it again
    assert await rows(session_factory, "SELECT count(*) FROM profiles") == [(0,)]


async def test_cancel_stops_a_running_job_and_the_history_says_so(
    workers, pool, session_factory, run_id, env
):
    workers.start(SLOW_CLAIMING_SETTINGS)
    await pool.enqueue_job("slow_metric", metric(run_id, 1, seconds=120), _job_id="to-cancel")

    async def started() -> bool:
        return len(await slow_starts(pool)) == 1

    await wait_for(started, within=20, what="the slow job started")
    cancelled = await asyncio.to_thread(run_cli, ["cancel", "to-cancel", "--json"], env)
    assert json.loads(cancelled.stdout)["state"] == "abort requested", cancelled.stderr

    async def recorded() -> bool:
        return [s for _, s, _, _ in await _history(session_factory, "to-cancel")] == ["cancelled"]

    await wait_for(recorded, within=10, what="the running job recorded as cancelled")
    [(message,)] = await rows(session_factory, "SELECT error_message FROM job_records")
    assert message == ABORTED
    status = await asyncio.to_thread(run_cli, ["status", "to-cancel", "--json"], env)
    assert json.loads(status.stdout)["state"] == "cancelled"
    assert await rows(session_factory, "SELECT count(*) FROM metrics") == [(0,)]
    # The worker serves on.
    done = await pool.enqueue_job("record_metric", metric(run_id, 2), _job_id="after")
    assert done is not None
    assert (await done.result(timeout=20))["inserted"] == 1
