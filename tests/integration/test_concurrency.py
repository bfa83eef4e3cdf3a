"""Concurrent use cases: one version wins on either database; SQLite's lock is transient.

PostgreSQL makes the second update wait on the row lock, SQLite on its one writer; both
must refuse the loser. A database locked past the busy timeout is SQLite's own failure,
and must be retried like PostgreSQL's lock timeouts (see test_retry_policy.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from domain import schemas, services
from domain.db import create_engine, create_session_factory
from domain.errors import StaleVersion
from domain.uow import SqlAlchemyUnitOfWork
from tests.support.db import MakeUow, sqlite_only
from worker.runtime.retry import is_transient


def _impatient(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=100")
    cursor.close()


async def test_concurrent_updates_of_one_version_cannot_both_win(uow_factory: MakeUow) -> None:
    async with uow_factory() as uow:
        profile = await services.create_profile(
            uow, schemas.CreateProfile(username="ada", email="a@example.com", full_name="Ada")
        )
    readers = []
    both_read = asyncio.Event()

    async def update(bio: str) -> object:
        payload = schemas.UpdateProfile(
            profile_id=profile.id, changes=schemas.ProfileChanges(bio=bio), expected_version=1
        )
        async with uow_factory() as uow:
            read = uow.profiles.get_for_update

            async def read_then_wait_for_the_other(profile_id: int) -> object:
                # Force the racy interleaving (both read before either writes) whenever
                # the database lets both read; a bounded wait when it rightly does not.
                found = await read(profile_id)
                readers.append(bio)
                if len(readers) == 2:
                    both_read.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(both_read.wait(), 0.5)
                return found

            uow.profiles.get_for_update = read_then_wait_for_the_other  # type: ignore[method-assign]
            return await services.update_profile(uow, payload)

    outcomes = await asyncio.gather(update("first"), update("second"), return_exceptions=True)
    async with uow_factory() as uow:
        stored = await services.get_profile(uow, profile.id)
    refused = [o for o in outcomes if isinstance(o, StaleVersion)]
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert (len(refused), len(winners)) == (1, 1)
    assert (stored.version, stored.bio) == (2, getattr(winners[0], "bio", None))


@sqlite_only
async def test_a_locked_sqlite_database_is_a_transient_failure(
    sqlite_database: str, uow_factory: MakeUow
) -> None:
    other = create_engine(sqlite_database)
    event.listen(other.sync_engine, "connect", _impatient)
    payload = schemas.CreateProfile(username="ada", email="a@example.com", full_name="Ada")
    try:
        async with uow_factory() as holder:
            await holder.profiles.count()  # its transaction now holds the write lock
            with pytest.raises(OperationalError, match="locked") as caught:
                async with SqlAlchemyUnitOfWork(create_session_factory(other)) as uow:
                    await services.create_profile(uow, payload)
    finally:
        await other.dispose()
    assert is_transient(caught.value)
    async with uow_factory() as uow:  # the lock is gone with the holder: a retry succeeds
        assert (await services.create_profile(uow, payload)).username == "ada"
