"""The Alembic migrations and the job ledger on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from domain.db import create_engine
from domain.repositories import JobStamp
from domain.uow import DuplicateJob
from tests.sqlite.helpers import UowFactory, sqlite_url
from worker import schema

TABLES = {
    "alembic_version",
    "experiments",
    "job_records",
    "job_tries",
    "metrics",
    "profile_generation_chunks",
    "profile_generations",
    "profiles",
    "runs",
}


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


def test_migrations_go_down_and_up_again_without_drift(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "migrations.db")
    config = schema.alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)  # raises when the models and the migrated schema differ


async def test_head_has_every_table(sqlite_database: str) -> None:
    assert await _tables(sqlite_database) == TABLES


def _stamp(job_id: str, *, hours_ago: float = 0) -> JobStamp:
    started = datetime.now(UTC) - timedelta(hours=hours_ago)
    return JobStamp(job_id=job_id, function="demo", tries=1, started_at=started)


async def test_a_second_success_of_the_same_job_is_a_duplicate(sqlite_uow: UowFactory) -> None:
    async with sqlite_uow(_stamp("job-1")) as uow:
        await uow.commit()
    with pytest.raises(DuplicateJob):
        async with sqlite_uow(_stamp("job-1")) as uow:
            await uow.commit()
    async with sqlite_uow() as uow:
        await uow.jobs.count_duplicate("job-1")
        await uow.commit()
    async with sqlite_uow() as uow:
        record = await uow.jobs.get("job-1")
        assert record is not None
        assert (record.status, record.duplicates) == ("succeeded", 1)
        assert record.finished_at.tzinfo is not None


async def test_a_failure_is_overwritten_by_a_later_success(sqlite_uow: UowFactory) -> None:
    async with sqlite_uow() as uow:
        await uow.jobs.record_failure(
            _stamp("job-2"), error_type="Boom", message="boom", payload={"a": 1}
        )
        await uow.commit()
    async with sqlite_uow(_stamp("job-2")) as uow:
        await uow.commit()
    async with sqlite_uow() as uow:
        recorded_again = await uow.jobs.record_failure(
            _stamp("job-2"), error_type="Late", message="late", payload=None
        )
        record = await uow.jobs.get("job-2")
        assert record is not None
        assert (record.status, record.error_type, record.payload) == ("succeeded", None, None)
    assert not recorded_again
