"""``dbjobs worker``: the same worker as ``arq worker.main.WorkerSettings``, from the CLI."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import select

from domain.models import Profile
from tests.support.fleet import BURST_COMMANDS, burst
from worker.testing.processes import run_cli, service_env

pytestmark = pytest.mark.e2e


def test_jobs_worker_exits_non_zero_when_redis_is_unreachable(pg_database):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    redis_url = f"redis://:hunter2-s3cret@127.0.0.1:{port}/0"
    env = service_env(pg_database, redis_url, JOBS_REDIS_CONNECT_RETRIES="0")
    crashed = run_cli(["worker"], env, timeout=60)
    assert crashed.returncode == 1
    last_line = crashed.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: the worker stopped: Redis at 127.0.0.1:{port}/0")
    assert "hunter2-s3cret" not in crashed.stdout + crashed.stderr
    assert "Traceback" not in crashed.stderr


@pytest.mark.parametrize("command", sorted(BURST_COMMANDS))
async def test_both_ways_of_starting_a_worker_run_what_the_cli_enqueued_with_its_settings(
    env, session_factory, command
):
    """Both run the job and trace it when told to; told not to (the default), neither
    does: tests/e2e/test_worker_log.py runs both that way."""
    enqueued = run_cli(
        ["enqueue", "create-profile", "--username", "tracy", "--email", "tracy@example.com",
         "--full-name", "Tracy", "--job-id", "traced"],
        env,
    )  # fmt: skip
    assert enqueued.returncode == 0, enqueued.stderr
    worked = burst(BURST_COMMANDS[command], {**env, "JOBS_LOG_EACH_JOB": "true"})
    log = worked.stdout + worked.stderr
    assert worked.returncode == 0, log
    assert "worker ready" in log
    assert "→ traced:create_profile" in log, log
    async with session_factory() as session:
        names = (await session.scalars(select(Profile.username))).all()
    assert names == ["tracy"]
    status = run_cli(["status", "traced"], env)
    assert "succeeded" in status.stdout
