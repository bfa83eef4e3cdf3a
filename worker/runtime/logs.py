"""Our loggers print beside arq's (arq's CLI configures only its own)."""

from __future__ import annotations

import logging
from typing import Any

_FORMAT = "%(asctime)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    logger = logging.getLogger("worker")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(level)
    brief_expected_failures()


class BriefExpectedFailures(logging.Filter):
    """One line, no traceback, for a job that failed as expected; a bug keeps its traceback.

    arq logs every failed job with ``logger.exception``: 20 to 147 lines for a profile not
    found. An expected failure, a refusal of the domain or an invalid payload, says all
    there is to say in its message, kept to one line (a payload's field names are the
    producer's text). So does a ``JobError``: the runner raises one, from None, for an error
    whose message was too long to keep, and its traceback shows only the runner.
    """

    def __init__(self, expected: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.expected = expected

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, self.expected):
            record.msg, record.args = _one_line(record.getMessage()), None
            record.exc_info = record.exc_text = None
        return True


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def brief_expected_failures() -> None:
    """Installed once on arq's logger, where it survives arq's CLI configuring logging."""
    from domain.errors import DomainError
    from worker.runtime.failures import InvalidPayload
    from worker.serialization import JobError

    logger = logging.getLogger("arq.worker")
    if not any(isinstance(f, BriefExpectedFailures) for f in logger.filters):
        logger.addFilter(BriefExpectedFailures((DomainError, InvalidPayload, JobError)))


# arq's two INFO lines per job: start ("→") and success ("←").
_JOB_TRACE = ("%6.2fs → ", "%6.2fs ← ")


class _WithoutJobTrace(logging.Logger):
    """arq's logger, minus the two INFO lines per job; retries, failures and every other
    line still pass.

    The line is dropped before logging builds a record for it (0.6 µs): a filter on the
    logger saw it only after that (23 µs a line, 0.05 ms of CPU per job, bench/, issue 14).
    At thousands of jobs a second the job ledger (``job_records``) is the better trace.
    """

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith(_JOB_TRACE):
            return
        super().info(msg, *args, **kwargs)


def skip_job_trace() -> None:
    # arq logs through the module-level logger it made at import; the object stays the same
    # (and keeps the level and handlers arq's CLI gives it later), only its class changes.
    logger = logging.getLogger("arq.worker")
    if type(logger) is logging.Logger:
        logger.__class__ = _WithoutJobTrace
