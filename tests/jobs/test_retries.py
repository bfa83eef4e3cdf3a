"""Transient faults are retried with a deferred ``Retry``; the final failure is recorded once."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from domain.models import Profile
from domain.repositories import RunRepository
from tests.support.faults import (
    TRANSIENT_FAULTS,
    connection_lost,
    failing_profile_inserts,
)
from tests.support.rows import job_record, run_statuses, seed_runs
from worker.serialization import JobError

PROFILE = {"username": "ada", "email": "ada@example.com", "full_name": "Ada L"}


def retry_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The ``defer`` of each ``Retry`` arq received, in seconds, from its log lines."""
    return [
        float(record.args[-1])
        for record in caplog.records
        if record.name == "arq.worker" and "retrying job in" in record.msg
    ]


@TRANSIENT_FAULTS
async def test_a_transient_fault_is_retried_and_succeeds_later(harness, monkeypatch, caplog, fault):
    caplog.set_level(logging.INFO, logger="arq.worker")
    attempts = failing_profile_inserts(monkeypatch, fault, times=2)
    job = await harness.enqueue("create_profile", PROFILE)

    worker = await harness.run()

    info = await harness.result(job.job_id)
    assert info.success
    assert info.job_try == 3
    assert info.result["username"] == "ada"
    assert attempts == [1, 2, 3]
    assert (worker.jobs_retried, worker.jobs_failed, worker.jobs_complete) == (2, 0, 1)
    assert len(retry_delays(caplog)) == 2
    assert all(delay > 0 for delay in retry_delays(caplog))  # deferred, not immediate
    assert await harness.count(Profile) == 1
    [record] = await harness.job_records()
    assert (record.status, record.tries, record.error_type) == ("succeeded", 3, None)


@TRANSIENT_FAULTS
async def test_transient_faults_past_max_tries_fail_the_job_once(harness, monkeypatch, fault):
    max_tries = harness.settings.max_tries
    attempts = failing_profile_inserts(monkeypatch, fault, times=max_tries + 5)
    job = await harness.enqueue("create_profile", PROFILE)

    worker = await harness.run()

    info = await harness.result(job.job_id)
    assert not info.success
    assert info.job_try == max_tries
    assert isinstance(info.result, JobError)
    assert info.result.type_name == "OperationalError"
    assert len(attempts) == max_tries
    assert (worker.jobs_retried, worker.jobs_failed) == (max_tries - 1, 1)
    assert await harness.count(Profile) == 0
    [record] = await harness.job_records()
    assert (record.job_id, record.status, record.tries) == (job.job_id, "failed", max_tries)
    assert record.error_type == "OperationalError"
    assert record.payload == PROFILE


async def test_a_permanent_database_error_is_not_retried(harness, monkeypatch):
    def check_violation() -> DBAPIError:
        return DBAPIError(
            "INSERT INTO profiles ...",
            None,
            asyncpg.CheckViolationError("new row violates check constraint"),
        )

    attempts = failing_profile_inserts(monkeypatch, check_violation, times=1)
    job = await harness.enqueue("create_profile", PROFILE)

    worker = await harness.run()

    info = await harness.result(job.job_id)
    assert (info.success, info.job_try, info.result.type_name) == (False, 1, "DBAPIError")
    assert attempts == [1]
    assert worker.jobs_retried == 0
    [record] = await harness.job_records()
    assert (record.status, record.tries) == ("failed", 1)


async def test_a_transient_fault_in_a_cron_tick_is_recorded_and_left_to_the_next_tick(
    harness, monkeypatch
):
    # arq gives a cron job one try and holds its in-progress key for a minute: a Retry
    # would sit there and then be dropped unrecorded.
    [stale] = await seed_runs(harness.session_factory, [timedelta(hours=2)])
    sweep = RunRepository.fail_stale
    attempts: list[int] = []

    async def flaky_sweep(self: RunRepository, **kwargs: Any) -> list[tuple[int, int]]:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            raise connection_lost()
        return await sweep(self, **kwargs)

    monkeypatch.setattr(RunRepository, "fail_stale", flaky_sweep)
    await harness.enqueue("cron:fail_stale_runs", _job_id="cron:fail_stale_runs:1")

    worker = await harness.run()

    assert (worker.jobs_failed, worker.jobs_retried, attempts) == (1, 0, [1])
    record = await job_record(harness.session_factory, "cron:fail_stale_runs:1")
    assert (record.status, record.tries, record.error_type) == ("failed", 1, "OperationalError")
    assert await run_statuses(harness.session_factory, [stale]) == ["running"]

    await harness.enqueue("cron:fail_stale_runs", _job_id="cron:fail_stale_runs:2")
    await harness.run()
    assert await run_statuses(harness.session_factory, [stale]) == ["failed"]
