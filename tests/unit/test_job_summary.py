"""The default log: a line per slow job, a summary line per period, nothing per job."""

from __future__ import annotations

import logging

import pytest

from worker.runtime.summary import JobTally, SummaryLogger, summary_line


def test_a_summary_counts_each_outcome_and_gives_the_percentiles():
    durations = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms
    line = summary_line({"succeeded": 1_200, "failed": 2, "retried": 3}, durations, 60)
    assert line == (
        "jobs in the last 60s: 2 failed, 3 retried, 1,200 succeeded; p50 51.0 ms, p99 100.0 ms"
    )


def test_a_period_without_jobs_logs_nothing():
    assert summary_line({}, [], 60) is None


def test_a_slow_job_gets_its_own_line_and_a_fast_one_none(caplog: pytest.LogCaptureFixture):
    tally = JobTally(slow_seconds=5)
    with caplog.at_level(logging.INFO, logger="worker.jobs"):
        tally.ended("succeeded", 0.004, "record_metric", "fast-1")
        tally.ended("failed", 7.25, "generate_profiles_chunk", "slow-1")
    assert [r.getMessage() for r in caplog.records] == [
        "job slow-1 (generate_profiles_chunk) was slow: 7.2s, failed"
    ]
    assert tally.take() == ({"succeeded": 1, "failed": 1}, [0.004, 7.25])
    assert tally.take() == ({}, [])


async def test_the_summary_task_logs_its_periods_and_the_last_one_at_stop(
    caplog: pytest.LogCaptureFixture,
):
    tally = JobTally()
    summary = SummaryLogger(tally, every=3600)
    summary.start()
    tally.ended("succeeded", 0.01, "record_metric", "j1")
    with caplog.at_level(logging.INFO, logger="worker.jobs"):
        await summary.stop()
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("jobs in the last 0s: 1 succeeded; p50 10.0 ms")


async def test_a_summary_period_of_zero_turns_the_summary_off(caplog: pytest.LogCaptureFixture):
    tally = JobTally()
    summary = SummaryLogger(tally, every=0)
    summary.start()
    tally.ended("succeeded", 0.01, "record_metric", "j1")
    with caplog.at_level(logging.INFO, logger="worker.jobs"):
        await summary.stop()
    assert caplog.records == []
