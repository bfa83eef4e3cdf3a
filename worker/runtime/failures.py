"""A delivery that did not succeed: a transient fault retried with backoff while tries
remain, a permanent one recorded as failed (or kept in the outbox while the database is
away) and raised for arq, and a failure of a job that in fact already succeeded told as
the duplicate it is. ``worker.runtime.delivery`` runs the job; the ends it does not see are
``worker.runtime.endings``'s.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, NoReturn

from arq import Retry
from pydantic import ValidationError
from redis.exceptions import RedisError

from domain.db import utcnow
from domain.errors import DomainError
from domain.repositories import JobStamp
from worker.bootstrap import Services
from worker.runtime.outbox import defer_failure, note_retry
from worker.runtime.retry import backoff_seconds, is_transient
from worker.serialization import JobError, recordable_payload
from worker.text import MAX_MESSAGE_CHARS, capped, first_line, problems

log = logging.getLogger("worker.jobs")

MAX_JOB_ID = 200  # job_records.job_id: a longer id cannot be recorded, so cannot run


class InvalidPayload(ValueError):
    """The payload failed validation: permanent, names every field and its problem."""

    def __init__(self, function: str, error: ValidationError | str) -> None:
        detail = error if isinstance(error, str) else _describe(error)
        super().__init__(f"invalid payload for {function}: {detail}")


def _describe(error: ValidationError) -> str:
    return capped("; ".join(problems(error)))


async def duplicate_outcome(services: Services, stamp: JobStamp) -> dict[str, Any]:
    log.info("job %s already succeeded: duplicate delivery, nothing changed", stamp.job_id)
    await count_duplicate(services, stamp)
    return {"duplicate": True, "job_id": stamp.job_id}


async def count_duplicate(services: Services, stamp: JobStamp) -> None:
    async with services.unit_of_work() as uow:
        await uow.jobs.count_duplicate(stamp.job_id)
        await uow.commit()


async def handle_failure(
    services: Services, stamp: JobStamp, raw: Any, error: Exception, *, max_tries: int
) -> dict[str, Any]:
    """Retry a transient fault with backoff; record and re-raise a permanent one.

    A permanent-looking failure of a job that in fact already succeeded (a re-delivered
    create whose unique key is now taken) is reported as the duplicate it is.
    """
    settings = services.settings
    if is_transient(error) and stamp.tries < max_tries:
        delay = backoff_seconds(
            stamp.tries, base=settings.retry_base_delay, cap=settings.retry_max_delay
        )
        log.warning(
            "job %s try %d hit a transient %s; retrying in %.2fs",
            stamp.job_id,
            stamp.tries,
            type(error).__name__,
            delay,
        )
        retry_at = utcnow() + timedelta(seconds=delay)
        try:  # what producers are told is best effort: the retry itself is not
            await note_retry(services.redis, stamp, _error(error), retry_at, settings.keep_result)
        except RedisError as problem:
            log.warning(
                "job %s: could not leave its retry note: %s", stamp.job_id, first_line(problem)
            )
        await record_retry(services, stamp, raw, error, retry_at)
        raise Retry(defer=delay) from error
    if len(stamp.job_id) > MAX_JOB_ID:
        _fail(error)  # the history has no room for its id; the producer hears it from arq
    failure = _failure(raw, error)
    try:
        recorded = await record_failure(services, stamp, failure)
    except Exception as problem:
        # The database is gone too: the history gets the failure later, from Redis, and
        # the producer hears the job's own error now.
        log.warning(
            "job %s failed with %s; the job history will record it once it can: %s",
            stamp.job_id,
            type(error).__name__,
            first_line(problem),
        )
        await defer_failure(services.redis, stamp, failure)
        error.__cause__ = problem
        _fail(error)
    if recorded:
        _fail(error)
    return await duplicate_outcome(services, stamp)


async def record_failure(services: Services, stamp: JobStamp, failure: dict[str, Any]) -> bool:
    """Write the final failure to the job history; False if the job had already succeeded."""
    async with services.unit_of_work() as uow:
        recorded = await uow.jobs.record_failure(stamp, **failure)
        await uow.commit()
    return recorded


def _failure(raw: Any, error: Exception) -> dict[str, Any]:
    """A final failure as the history records it."""
    error_type, message = _error(error)
    return {
        "error_type": error_type,
        "message": message,
        "payload": recordable_payload(raw),
        "retryable": not isinstance(error, DomainError | InvalidPayload),
    }


async def record_retry(
    services: Services, stamp: JobStamp, raw: Any, error: Exception, retry_at: datetime
) -> None:
    """Write a try that will be retried. Best effort: the fault being retried is often the
    database itself, and the retry must happen whether or not it could be written down."""
    try:
        async with services.unit_of_work() as uow:
            error_type, message = _error(error)
            await uow.jobs.record_retry(
                stamp,
                error_type=error_type,
                message=message,
                payload=recordable_payload(raw),
                retry_at=retry_at,
            )
            await uow.commit()
    except Exception as problem:
        log.warning(
            "job %s: the job history could not record try %d: %s",
            stamp.job_id,
            stamp.tries,
            first_line(problem),
        )


def _error(error: Exception) -> tuple[str, str]:
    """Its type and message as the history keeps them: an expected error's whole message
    (capped), else the first line of it."""
    expected = isinstance(error, DomainError | InvalidPayload)
    return type(error).__name__, capped(str(error)) if expected else first_line(error)


def _fail(error: Exception) -> NoReturn:
    """Raise the job's error for arq to log and store; one too long to keep is cut short,
    keeping its type and traceback where its message can be replaced."""
    text = str(error)
    if len(text) <= MAX_MESSAGE_CHARS:
        raise error
    error.args = (capped(text),)
    if len(str(error)) <= MAX_MESSAGE_CHARS + 100:  # its message came from its args
        raise error
    raise JobError(type(error).__name__, capped(text)) from None
