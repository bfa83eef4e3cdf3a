"""A real worker's own /metrics after known jobs ran: each outcome counted exactly."""

from __future__ import annotations

import asyncio

import pytest
from arq.constants import result_key_prefix

from tests.support.fleet import SLOW_WORKER_SETTINGS
from tests.support.scrape import get, scrape
from tests.support.servers import free_port
from tests.support.slow_worker import FLAKY

pytestmark = pytest.mark.e2e

RESULT_WAIT = 30


def jobs_total(found, function: str, outcome: str) -> float:
    return found[("dbjobs_jobs_total", (("function", function), ("outcome", outcome)))]


async def test_the_outcome_of_each_known_job_is_counted_once(workers, pool, run_id):
    port = free_port()
    workers.start(SLOW_WORKER_SETTINGS, JOBS_METRICS_PORT=str(port), JOBS_RETRY_BASE_DELAY="0.1")

    def point(step: int, run: int = run_id) -> dict[str, object]:
        return {"run_id": run, "name": "loss", "step": step, "value": 0.5}

    async def run(function: str, payload: dict[str, object], job_id: str) -> object:
        job = await pool.enqueue_job(function, payload, _job_id=job_id)
        assert job is not None
        try:
            return await job.result(timeout=RESULT_WAIT, poll_delay=0.05)
        except Exception as error:  # the failure, as the producer hears it
            return error

    for step in range(3):
        assert (await run("record_metric", point(step), f"ok:{step}"))["inserted"] == 1
    failure = await run("record_metric", point(0, run=424242), "missing-run")
    assert "run 424242 not found" in str(failure)
    assert (await run(FLAKY, point(10), "flaky"))["inserted"] == 1
    await pool.delete(result_key_prefix + "ok:0")  # past arq's guard: delivered again
    assert await run("record_metric", point(0), "ok:0") == {"duplicate": True, "job_id": "ok:0"}

    found = await asyncio.to_thread(scrape, port)

    assert jobs_total(found, "record_metric", "succeeded") == 3
    assert jobs_total(found, "record_metric", "failed") == 1
    assert jobs_total(found, "record_metric", "duplicate") == 1
    assert jobs_total(found, "record_metric", "retried") == 0
    assert jobs_total(found, FLAKY, "retried") == 1
    assert jobs_total(found, FLAKY, "succeeded") == 1
    assert jobs_total(found, FLAKY, "failed") == 0
    durations = ("dbjobs_job_duration_seconds_count", (("function", "record_metric"),))
    assert found[durations] == 5
    assert found[("dbjobs_job_duration_seconds_count", (("function", FLAKY),))] == 2
    assert found[("dbjobs_jobs_running", ())] == 0
    assert found[("dbjobs_worker_up", ())] == 1
    assert found[("dbjobs_worker_state", (("state", "ready"),))] == 1
    assert found[("dbjobs_worker_state", (("state", "stopping"),))] == 0
    assert ("dbjobs_leases_recovered_total", ()) in found
    assert found[("process_cpu_seconds_total", ())] > 0
    assert await asyncio.to_thread(get, port, "/healthz") == (200, "alive\n")
    assert await asyncio.to_thread(get, port, "/readyz") == (200, "ready\n")
