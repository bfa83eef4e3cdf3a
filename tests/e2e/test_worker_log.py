"""The worker's log: one line per expected failure, a traceback only for anything else."""

from __future__ import annotations

import socket

import pytest

from tests.support.fleet import BURST_COMMANDS, burst
from tests.support.queue import arq_client
from worker.testing.processes import service_env

pytestmark = pytest.mark.e2e

ADA = {"username": "ada", "email": "ada@example.com", "full_name": "Ada L"}


@pytest.mark.parametrize("command", sorted(BURST_COMMANDS))
async def test_expected_failures_log_one_line_each_and_no_traceback(env, clean_redis, command):
    """Each worker command, told not to log each job: a job that succeeds leaves no line
    (told to, both trace it: tests/e2e/test_cli_worker.py)."""
    async with arq_client(clean_redis.url) as pool:
        await pool.enqueue_job(
            "create_profile",
            {"username": "tracy", "email": "tracy@example.com", "full_name": "T"},
            _job_id="quiet",
        )
        await pool.enqueue_job(
            "update_profile", {"profile_id": 987654, "changes": {"bio": "x"}}, _job_id="missing"
        )
        await pool.enqueue_job(
            "create_profile", {**ADA, "email": "nope", "nick\nforged": 1}, _job_id="invalid"
        )
        # Run side by side: either one may find the username or the email taken.
        await pool.enqueue_job("create_profile", ADA, _job_id="ada-1")
        await pool.enqueue_job("create_profile", ADA, _job_id="ada-2")

    worked = burst(BURST_COMMANDS[command], {**env, "JOBS_LOG_EACH_JOB": "false"})

    log = worked.stdout + worked.stderr
    assert worked.returncode == 0, log
    assert "quiet:create_profile" not in log, log
    failures = [line for line in log.splitlines() if " ! " in line and " failed, " in line]
    assert len(failures) == 3, log
    assert sum("missing:update_profile failed, ProfileNotFound" in f for f in failures) == 1
    assert sum("invalid:create_profile failed, InvalidPayload" in f for f in failures) == 1
    assert sum(":create_profile failed, AlreadyExists: " in f for f in failures) == 1
    assert "nick\\nforged: Extra inputs are not permitted" in log
    assert not any(line.startswith("forged") for line in log.splitlines()), log
    assert "Traceback" not in log


async def test_any_other_failure_keeps_its_traceback(pg_database, clean_redis):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = f"postgresql://postgres@127.0.0.1:{port}/nowhere"
    env = service_env(unreachable, clean_redis.url, JOBS_MAX_TRIES="1")
    async with arq_client(clean_redis.url) as pool:
        await pool.enqueue_job("create_profile", ADA, _job_id="no-database")

    worked = burst(BURST_COMMANDS["dbjobs worker"], env)

    log = worked.stdout + worked.stderr
    assert worked.returncode == 0, log
    assert "no-database:create_profile failed, ConnectionRefusedError" in log
    assert "Traceback (most recent call last)" in log
