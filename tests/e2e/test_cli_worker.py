"""``dbjobs worker``: the same worker as ``arq worker.main.WorkerSettings``, from the CLI."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from sqlalchemy import select

from domain.models import Profile
from worker.testing.processes import ROOT, run_cli, service_env

pytestmark = pytest.mark.e2e


async def test_jobs_worker_runs_what_the_cli_enqueued(env, session_factory):
    enqueued = run_cli(
        ["enqueue", "create-profile", "--username", "lin", "--email", "lin@example.com",
         "--full-name", "Lin", "--job-id", "by-cli-worker"],
        env,
    )  # fmt: skip
    assert enqueued.returncode == 0, enqueued.stderr
    worked = run_cli(["worker", "--burst"], env, timeout=90)
    assert worked.returncode == 0, worked.stderr
    assert "worker ready" in worked.stderr + worked.stdout
    async with session_factory() as session:
        names = (await session.scalars(select(Profile.username))).all()
    assert names == ["lin"]
    status = run_cli(["status", "by-cli-worker"], env)
    assert "succeeded" in status.stdout


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


WORKER_COMMANDS = {
    "dbjobs worker": [sys.executable, "-m", "worker.cli", "worker", "--burst"],
    "arq": [sys.executable, "-m", "arq", "worker.main.WorkerSettings", "--burst"],
}


@pytest.mark.parametrize("log_each_job", ["true", "false"])
@pytest.mark.parametrize("command", sorted(WORKER_COMMANDS))
def test_both_ways_of_starting_a_worker_honour_the_same_settings(env, command, log_each_job):
    job_id = f"traced-{log_each_job}"
    enqueued = run_cli(
        ["enqueue", "create-profile", "--username", "tracy", "--email", "tracy@example.com",
         "--full-name", "Tracy", "--job-id", job_id],
        env,
    )  # fmt: skip
    assert enqueued.returncode == 0, enqueued.stderr
    worked = subprocess.run(
        WORKER_COMMANDS[command],
        cwd=ROOT,
        env={**env, "JOBS_LOG_EACH_JOB": log_each_job},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    log = worked.stdout + worked.stderr
    assert worked.returncode == 0, log
    assert "worker ready" in log
    traced = f"→ {job_id}:create_profile" in log
    assert traced == (log_each_job == "true"), log
