"""``retry.is_transient`` on errors PostgreSQL really raises, and the backoff's bounds.

Deadlocks, serialization failures, lock timeouts and dropped connections are provoked on
the suite's database, so the classification is checked against what asyncpg and
SQLAlchemy actually raise, not against hand-built exceptions.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from domain import schemas
from domain.db import create_engine, sqlstate
from domain.errors import RunNotFound
from tests.support.servers import free_port
from worker.runtime.failures import InvalidPayload
from worker.runtime.retry import JobTimedOut, backoff_seconds, is_transient

UPDATE = text("UPDATE profiles SET bio = :bio WHERE id = :id")


@pytest.fixture
async def two_profiles(emptied_pg_engine):
    async with emptied_pg_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO profiles (id, username, email, full_name, bio) VALUES "
                "(1, 'one', 'one@example.com', 'One', ''), (2, 'two', 'two@example.com', 'Two', '')"
            )
        )
    return emptied_pg_engine


async def failure_of(statement: Awaitable[object]) -> DBAPIError:
    with pytest.raises(DBAPIError) as caught:
        await statement
    return caught.value


async def test_a_real_deadlock_is_transient(two_profiles):
    async with two_profiles.connect() as first, two_profiles.connect() as second:
        for connection, row in ((first, 1), (second, 2)):
            await connection.execute(text("SET deadlock_timeout = '50ms'"))
            await connection.execute(UPDATE, {"bio": "mine", "id": row})
        crossed = await asyncio.gather(
            first.execute(UPDATE, {"bio": "yours", "id": 2}),
            second.execute(UPDATE, {"bio": "yours", "id": 1}),
            return_exceptions=True,
        )
        victims = [r for r in crossed if isinstance(r, BaseException)]
        for connection in (first, second):
            await connection.rollback()
    assert len(victims) == 1
    assert sqlstate(victims[0]) == "40P01"
    assert is_transient(victims[0])


async def test_a_real_serialization_failure_is_transient(two_profiles):
    async with two_profiles.connect() as reader, two_profiles.connect() as writer:
        await reader.execution_options(isolation_level="REPEATABLE READ")
        await reader.execute(text("SELECT bio FROM profiles WHERE id = 1"))  # takes a snapshot
        await writer.execute(UPDATE, {"bio": "changed", "id": 1})
        await writer.commit()
        error = await failure_of(reader.execute(UPDATE, {"bio": "stale", "id": 1}))
        await reader.rollback()
    assert sqlstate(error) == "40001"
    assert is_transient(error)


async def test_a_lock_timeout_is_transient(two_profiles):
    async with two_profiles.connect() as holder, two_profiles.connect() as waiter:
        await holder.execute(UPDATE, {"bio": "held", "id": 1})
        await waiter.execute(text("SET lock_timeout = '50ms'"))
        error = await failure_of(waiter.execute(UPDATE, {"bio": "waited", "id": 1}))
        for connection in (holder, waiter):
            await connection.rollback()
    assert sqlstate(error) == "55P03"
    assert is_transient(error)


async def test_a_connection_terminated_by_the_server_is_transient(two_profiles):
    async with two_profiles.connect() as victim, two_profiles.connect() as admin:
        pid = (await victim.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await victim.commit()
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        error = await failure_of(victim.execute(text("SELECT 1")))
    assert is_transient(error)


async def test_a_refused_connection_is_transient():
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    try:
        with pytest.raises(OSError, match=r"refused|Connect call failed") as caught:
            async with engine.connect():
                pass
    finally:
        await engine.dispose()
    assert is_transient(caught.value)


@pytest.mark.parametrize(
    ("statement", "state"),
    [
        (
            "INSERT INTO profiles (id, username, email, full_name, bio) "
            "VALUES (3, 'one', 'other@example.com', 'Again', '')",
            "23505",  # unique_violation: trying again cannot help
        ),
        ("SELECT 1 / 0", "22012"),  # division_by_zero
        ("SELECT 'abc'::int", "22P02"),  # invalid_text_representation
        ("SELECT * FROM no_such_table", "42P01"),  # undefined_table
    ],
    ids=["unique-violation", "division-by-zero", "bad-cast", "undefined-table"],
)
async def test_permanent_database_errors_are_not_retried(two_profiles, statement, state):
    async with two_profiles.connect() as connection:
        error = await failure_of(connection.execute(text(statement)))
        await connection.rollback()
    assert sqlstate(error) == state
    assert not is_transient(error)


def test_bad_input_and_domain_refusals_are_permanent():
    with pytest.raises(ValidationError) as invalid:
        schemas.RecordMetric.model_validate({"run_id": 0})
    assert not is_transient(invalid.value)
    assert not is_transient(InvalidPayload("record_metric", invalid.value))
    assert not is_transient(RunNotFound(7))
    assert not is_transient(FileNotFoundError("missing.jsonl"))


def test_a_try_past_its_timeout_is_retried():
    assert is_transient(JobTimedOut("record_metric ran longer than its 60 s timeout"))


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_is_exponential_with_equal_jitter_and_capped(attempt):
    ceiling = min(60.0, 0.5 * 2 ** (attempt - 1))
    delays = [
        backoff_seconds(attempt, base=0.5, cap=60, rng=random.Random(seed)) for seed in range(200)
    ]
    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert max(delays) - min(delays) > ceiling / 4  # spread out, not in lockstep
