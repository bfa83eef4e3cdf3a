"""The one place that decides: retry later (transient) or fail now (permanent)."""

from __future__ import annotations

import random
import sqlite3

from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from domain.db import sqlstate

# SQLSTATE classes and codes that a later try can get past.
TRANSIENT_SQLSTATE_PREFIXES = ("08",)  # connection exceptions
TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "53300",  # too_many_connections
        "55P03",  # lock_not_available
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
    }
)


def _is_transient_os_error(error: object) -> bool:
    return isinstance(error, OSError) and not isinstance(
        error, FileNotFoundError | PermissionError | IsADirectoryError
    )


class JobTimedOut(TimeoutError):
    """A try ran past its job's timeout: cancelled where it was, its transaction rolled
    back (``worker.runtime.endings``)."""


def is_transient(error: BaseException) -> bool:
    if isinstance(error, ValidationError):
        return False
    if isinstance(error, JobTimedOut):  # a lock or a slow database may be gone next try;
        return True  # a job too big for its timeout fails once its tries are spent
    state = sqlstate(error)
    if state is not None:
        return state in TRANSIENT_SQLSTATES or state.startswith(TRANSIENT_SQLSTATE_PREFIXES)
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        if (
            isinstance(error.orig, sqlite3.OperationalError)
            or "sqlite" in type(error.orig).__module__
        ):
            return "locked" in str(error.orig) or "busy" in str(error.orig)
        return _is_transient_os_error(getattr(error.orig, "__cause__", None) or error.orig)
    return isinstance(
        error, PoolTimeout | RedisConnectionError | RedisTimeoutError
    ) or _is_transient_os_error(error)


def backoff_seconds(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped.

    The random half spreads retries of jobs that failed together (a database restart)
    so they do not all come back at once.
    """
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    jitter: float = (rng or random.Random()).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter
