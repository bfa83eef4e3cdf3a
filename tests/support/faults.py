"""Faults a test can make the database raise, as SQLAlchemy would raise them."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from domain.models import Profile
from domain.repositories import ProfileRepository


def connection_lost() -> DBAPIError:
    return OperationalError(
        "INSERT INTO profiles ...",
        None,
        ConnectionResetError("connection reset by peer"),
        connection_invalidated=True,
    )


def deadlock() -> DBAPIError:
    # What SQLAlchemy raises when PostgreSQL picks this transaction as the deadlock victim.
    return OperationalError(
        "INSERT INTO profiles ...", None, asyncpg.DeadlockDetectedError("deadlock detected")
    )


TRANSIENT_FAULTS = pytest.mark.parametrize(
    "fault", [connection_lost, deadlock], ids=["connection-lost", "deadlock"]
)


def failing_profile_inserts(monkeypatch: pytest.MonkeyPatch, fault, times: int) -> list[int]:
    """Make the first ``times`` profile inserts raise ``fault()``; returns the attempt log."""
    attempts: list[int] = []
    insert = ProfileRepository.add

    async def flaky_add(self: ProfileRepository, profile: Profile) -> Profile:
        attempts.append(len(attempts) + 1)
        if len(attempts) <= times:
            raise fault()
        return await insert(self, profile)

    monkeypatch.setattr(ProfileRepository, "add", flaky_add)
    return attempts
