"""The worker's database goes away: a job's tries and last error are still shown while it
retries, and its final failure reaches `dbjobs failed` once the database is back."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.support.fleet import OFTEN_DRAINING_SETTINGS, Summary, fleet, report, wait_for
from worker.testing.processes import run_cli, service_env

pytestmark = pytest.mark.e2e

JOB_ID = "while-away"


def jobs(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    done = run_cli([*args, "--json"], env, timeout=60)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, f"{done.stdout}\n{done.stderr}"
    return done.returncode, json.loads(lines[0])


async def test_a_job_shows_its_retries_while_the_database_is_away(
    private_postgres, clean_redis, tmp_path
):
    server, database_url = private_postgres
    env = service_env(
        database_url,
        clean_redis.url,
        JOBS_MAX_TRIES="4",
        JOBS_RETRY_BASE_DELAY="1",
        JOBS_RETRY_MAX_DELAY="2",
    )
    with fleet(env, tmp_path) as workers:
        # Its history outbox drained every 0.5 s, not 5 s: the failure reaches the history
        # at the first drain once the database is back, which the test waits for.
        workers.start(OFTEN_DRAINING_SETTINGS)
        await asyncio.to_thread(server.stop, "fast")
        code, queued = jobs(env, "enqueue", "create-profile", "--username", "ada",
                            "--email", "ada@example.com", "--full-name", "Ada",
                            "--job-id", JOB_ID)  # fmt: skip
        assert (code, queued["state"]) == (0, "queued")

        seen: dict[str, Any] = {}

        async def retrying() -> bool:
            _, status = await asyncio.to_thread(jobs, env, "status", JOB_ID)
            seen.update(status)
            return status["state"] == "retrying"

        await wait_for(retrying, within=30, what="the job shown as retrying")
        assert seen["tries"] >= 1
        assert seen["next_retry_at"]
        assert seen["error"]["type"] in {"OperationalError", "ConnectionRefusedError", "OSError"}

        code, failed = await asyncio.to_thread(jobs, env, "result", JOB_ID, "--wait")
        assert code == 1
        assert failed["state"] == "failed"
        assert failed["tries"] == 4

        back = time.monotonic()
        await asyncio.to_thread(server.start)

        answers: list[Any] = []

        async def listed() -> bool:
            code, data = await asyncio.to_thread(jobs, env, "failed")
            answers.append((code, data))
            # A cron tick that fell in the outage fails and is kept the same way.
            return code == 0 and JOB_ID in [f["job_id"] for f in data["failed"]]

        try:
            await wait_for(listed, within=30, what="the failure in the history", interval=0.5)
        except AssertionError as late:
            logs = "".join(worker.log for worker in workers.workers)
            raise AssertionError(f"{late}; last answer {answers[-1:]}\n{logs}") from None
        recorded = time.monotonic() - back
        logs = "".join(worker.log for worker in workers.workers)
    assert "the job history will record it once it can" in logs
    report(
        Summary(
            scenario="9. the worker's database away while a job retries",
            jobs_run=1,
            faults="PostgreSQL stopped before the job, started again after its last try",
            rows_lost=0,
            rows_doubled=0,
            recovery=f"retries shown while away; failure in dbjobs failed {recorded:.1f}s after",
        )
    )
