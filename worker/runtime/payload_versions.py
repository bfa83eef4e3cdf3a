"""Jobs whose payload's schema version this worker may not know: a rolling deploy.

During a deploy old and new workers take jobs from one queue. A producer says the version
of a job's payload (``worker.ops.enqueue.VERSION_KWARG``; none means version 1), and a
worker:

- runs one it knows, a payload of an older accepted version upgraded to its own first
  (``Job.upgraded``);
- refuses one older than it accepts, as an invalid payload;
- never fails one newer than it knows: it puts it back on the queue for a worker that
  knows it, without spending a try, after a short wait that grows with each time up to
  ``JOBS_PAYLOAD_VERSION_WAIT`` (with jitter), and the history shows each time as a
  ``retrying`` try whose error is ``PayloadVersionAhead``. Once
  ``JOBS_PAYLOAD_VERSION_GRACE`` seconds have passed since a worker first left it, no
  worker that knows it is coming: the job fails, saying so, and ``dbjobs retry`` can run
  it again once one is deployed.

Cron jobs carry no payload on the queue: the worker that runs one builds it, at its own
version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from arq import Retry
from arq.constants import retry_key_prefix
from arq.utils import timestamp_ms
from redis.exceptions import RedisError

from domain.db import utcnow
from worker.bootstrap import services_of
from worker.ops.enqueue import PARENT_KWARG, VERSION_KWARG
from worker.registry import Job
from worker.runtime.delivery import stamp_of
from worker.runtime.endings import deliver
from worker.runtime.failures import MAX_JOB_ID, handle_failure, record_retry
from worker.runtime.outbox import note_retry
from worker.runtime.retry import backoff_seconds
from worker.serialization import UnreadablePayload
from worker.text import first_line

log = logging.getLogger("worker.jobs")

WAIT_KEY_PREFIX = "dbjobs:version-wait:"  # a hash per job: since when it waits, how often
# The wait before the job is offered again: 0.5 s doubling up to JOBS_PAYLOAD_VERSION_WAIT,
# half of it random, so that a burst of new jobs does not come back to old workers at once.
WAIT_BASE_SECONDS = 0.5


class PayloadVersionAhead(Exception):
    """A payload newer than this worker's version of its job: another worker's to run."""

    def __init__(self, job: Job[Any], version: int, payload: Any) -> None:
        super().__init__(
            f"payload version {version} of {job.name} is newer than this worker knows "
            f"(versions {job.accepts_from} to {job.version})"
        )
        self.payload = payload


class PayloadVersionUnknown(Exception):
    """No worker that knows a payload's version took it within the grace period."""


async def run_versioned(
    ctx: dict[str, Any], job: Job[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """One delivery of ``job`` (``deliver``) with its payload at this worker's version, or
    the job left for a worker that knows its version."""
    given = kwargs.pop(VERSION_KWARG, None)
    try:
        args, kwargs = check_payload_version(job, given, args, kwargs)
    except PayloadVersionAhead as ahead:
        return await leave_for_another_worker(ctx, job, ahead, kwargs.get(PARENT_KWARG))
    return await deliver(ctx, job, args, kwargs)


Arguments = tuple[tuple[Any, ...], dict[str, Any]]


def check_payload_version(
    job: Job[Any], given: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Arguments:
    """The job's arguments at ``job.version``: as they are, upgraded, or (for a version this
    worker refuses) a payload that ``run_job`` fails as invalid, saying why.

    Raises ``PayloadVersionAhead`` for a payload newer than ``job.version``.
    """
    version = 1 if given is None else given
    if version == job.version:
        return args, kwargs
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return _refused(job, f"{VERSION_KWARG}: a version number from 1, not {given!r}", kwargs)
    payload = _payload(args, kwargs)
    if version > job.version:
        raise PayloadVersionAhead(job, version, payload)
    if version < job.accepts_from:
        reason = (
            f"payload version {version} is older than the oldest {job.name} accepts "
            f"({job.accepts_from}); send it at version {job.version}"
        )
        return _refused(job, reason, kwargs)
    if not isinstance(payload, dict):
        return args, kwargs  # not a payload of any version: run_job says what is wrong
    try:
        return (job.upgraded(payload, version),), _beside_payload(kwargs)
    except Exception as problem:
        reason = f"payload version {version} could not be upgraded: {problem!r}"
        return _refused(job, reason, kwargs)


def _payload(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """The payload as given: the sole argument, or the keyword arguments."""
    if args:
        return args[0] if len(args) == 1 else list(args)
    return {name: value for name, value in kwargs.items() if name != PARENT_KWARG}


def _beside_payload(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments that are not the payload's fields."""
    return {PARENT_KWARG: kwargs[PARENT_KWARG]} if PARENT_KWARG in kwargs else {}


def _refused(job: Job[Any], reason: str, kwargs: Mapping[str, Any]) -> Arguments:
    return (UnreadablePayload(reason, job.name),), _beside_payload(kwargs)


async def leave_for_another_worker(
    ctx: dict[str, Any], job: Job[Any], ahead: PayloadVersionAhead, parent_id: Any = None
) -> dict[str, Any]:
    """Put the job back on the queue, its try not spent, and say so in the history; once
    the grace period is over, fail it."""
    services = services_of(ctx)
    stamp = stamp_of(ctx, job.name, services.worker_id)
    if isinstance(parent_id, str) and 0 < len(parent_id) <= MAX_JOB_ID:
        stamp = replace(stamp, parent_id=parent_id)  # (a bad one is run_job's to refuse)
    grace, longest = services.settings.payload_version_grace, services.settings.payload_version_wait
    try:
        waited, times = await _note_wait(services.redis, stamp.job_id, ttl=grace + longest)
    except RedisError as problem:  # its try is spent this once: arq's retries bound it
        log.warning("job %s: %s; Redis failed: %s", stamp.job_id, ahead, first_line(problem))
        raise Retry(defer=WAIT_BASE_SECONDS) from problem
    if waited >= grace:
        unknown = PayloadVersionUnknown(
            f"{ahead}; no worker that knows it took it within "
            f"JOBS_PAYLOAD_VERSION_GRACE ({grace:g} s): deploy one, then `dbjobs retry` it"
        )
        return await handle_failure(services, stamp, ahead.payload, unknown, max_tries=1)
    delay = backoff_seconds(times, base=WAIT_BASE_SECONDS, cap=longest)
    retry_at = utcnow() + timedelta(seconds=delay)
    log.info("job %s: %s; left for another worker for %.2fs", stamp.job_id, ahead, delay)
    error = type(ahead).__name__, str(ahead)
    try:  # what producers are told is best effort, as for a retry
        await note_retry(services.redis, stamp, error, retry_at, services.settings.keep_result)
    except RedisError as problem:
        log.warning("job %s: could not leave its note: %s", stamp.job_id, first_line(problem))
    payload = ahead.payload if isinstance(ahead.payload, dict) else None
    await record_retry(services, stamp, payload, ahead, retry_at)
    raise Retry(defer=delay)


async def _note_wait(redis: Any, job_id: str, *, ttl: float) -> tuple[float, int]:
    """Seconds since a worker first left the job, and how many times it has been left; the
    try arq counted as it started this one given back, so that waiting costs no try."""
    key = WAIT_KEY_PREFIX + job_id
    now = timestamp_ms()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hsetnx(key, "since", now)
        pipe.hincrby(key, "times", 1)
        pipe.hget(key, "since")
        pipe.expire(key, int(ttl) + 1)
        pipe.decr(retry_key_prefix + job_id)
        _, times, since, _, _ = await pipe.execute()
    return (now - int(since)) / 1000, int(times)


__all__ = ["check_payload_version", "run_versioned"]
