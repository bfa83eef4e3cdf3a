"""arq's log line for a failed job: brief for an expected failure, a traceback for a bug."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from domain.errors import ProfileNotFound
from worker.runtime.failures import InvalidPayload
from worker.runtime.logs import BriefExpectedFailures, brief_expected_failures, skip_job_trace
from worker.serialization import JobError

ARQ_FAILED = "%6.2fs ! %s failed, %s: %s"


def failure_record(error: Exception) -> logging.LogRecord:
    """The record arq's ``logger.exception`` makes for a job that raised ``error``."""
    try:
        raise error
    except Exception as raised:
        exc_info = sys.exc_info()
        args = (0.01, "job-1:some_job", type(raised).__name__, raised)
    return logging.LogRecord("arq.worker", logging.ERROR, __file__, 1, ARQ_FAILED, args, exc_info)


def formatted(error: Exception) -> str:
    """The record as a handler of arq's logger would print it, after the logger's filters."""
    record = failure_record(error)
    assert logging.getLogger("arq.worker").filter(record)
    return logging.Formatter("%(message)s").format(record)


@pytest.fixture(autouse=True)
def arq_logger() -> Iterator[logging.Logger]:
    """arq's logger with the filter installed, as it was before the test afterwards."""
    logger = logging.getLogger("arq.worker")
    before = list(logger.filters)
    brief_expected_failures()
    yield logger
    logger.filters[:] = before


@pytest.mark.parametrize(
    "error",
    [
        ProfileNotFound(7),
        InvalidPayload("create_profile", "nick\nforged: unknown field"),
        JobError("InvalidPayload", "x" * 3000),
    ],
    ids=["domain", "payload", "job-error"],
)
def test_an_expected_failure_is_one_line_without_traceback(error: Exception):
    text = formatted(error)
    assert text.startswith("  0.01s ! job-1:some_job failed, ")
    assert "\n" not in text
    assert "Traceback" not in text


def test_a_newline_in_an_expected_failure_is_escaped():
    text = formatted(InvalidPayload("create_profile", "nick\nforged: unknown field"))
    assert text.endswith("nick\\nforged: unknown field")


def test_a_bug_keeps_its_traceback():
    text = formatted(RuntimeError("boom\nsecond line"))
    assert text.startswith("  0.01s ! job-1:some_job failed, RuntimeError: boom\nsecond line\n")
    assert "Traceback (most recent call last)" in text
    assert "raise error" in text


def test_the_filter_is_installed_once(arq_logger: logging.Logger):
    brief_expected_failures()
    brief_expected_failures()
    assert sum(isinstance(f, BriefExpectedFailures) for f in arq_logger.filters) == 1


def test_without_the_job_trace_only_the_two_lines_per_job_are_dropped(
    arq_logger: logging.Logger, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="arq.worker")
    try:
        skip_job_trace()
        skip_job_trace()
        arq_logger.info("%6.2fs → %s(%s)%s", 0.0, "job-1:record_metric", "", "")
        arq_logger.info("%6.2fs ← %s ● %s", 0.01, "job-1:record_metric", "")
        arq_logger.info("%6.2fs ↻ %s retrying job in %0.2fs", 0.01, "job-2:record_metric", 0.5)
        arq_logger.warning("job %s expired", "job-3")
    finally:
        arq_logger.__class__ = logging.Logger
    assert [r.getMessage() for r in caplog.records] == [
        "  0.01s ↻ job-2:record_metric retrying job in 0.50s",
        "job job-3 expired",
    ]
