"""The unit of work on PostgreSQL: commit or nothing, one session each, the job ledger."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import select

from domain import schemas, services
from domain.db import utcnow
from domain.generator import generate_chunk
from domain.models import JobRecord, Profile
from domain.repositories import JobRecordRepository, JobStamp, LedgerRowExists
from domain.uow import DuplicateJob
from tests.support.db import MakeUow, count_rows, postgresql_only


def _profile(username: str) -> Profile:
    return Profile(username=username, email=f"{username}@example.com", full_name="A B", bio="")


def _stamp(job_id: str = "job-1", tries: int = 1) -> JobStamp:
    return JobStamp(job_id=job_id, function="create_profile", tries=tries, started_at=utcnow())


async def test_committed_work_is_visible_to_the_next_unit_of_work(uow_factory: MakeUow):
    async with uow_factory() as uow:
        await uow.profiles.add(_profile("ada"))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.profiles.count() == 1


async def test_without_commit_nothing_is_kept(uow_factory: MakeUow, session_factory):
    async with uow_factory() as uow:
        await uow.profiles.add(_profile("ada"))
        assert await uow.profiles.count() == 1
    assert await count_rows(session_factory, "profiles") == 0


async def test_an_exception_inside_the_block_rolls_back(uow_factory: MakeUow, session_factory):
    async def add_then_fail() -> None:
        async with uow_factory() as uow:
            await uow.profiles.add(_profile("ada"))
            raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        await add_then_fail()
    assert await count_rows(session_factory, "profiles") == 0


async def test_work_after_a_commit_is_rolled_back_at_exit(uow_factory: MakeUow, session_factory):
    async with uow_factory() as uow:
        await uow.profiles.add(_profile("ada"))
        await uow.commit()
        await uow.profiles.add(_profile("grace"))
    async with session_factory() as session:
        assert list(await session.scalars(select(Profile.username))) == ["ada"]


@postgresql_only  # SQLite has one writer: the second transaction waits for the first
async def test_two_units_of_work_are_independent_sessions(uow_factory: MakeUow):
    async with uow_factory() as first, uow_factory() as second:
        assert first.session is not second.session
        await first.profiles.add(_profile("ada"))
        assert await second.profiles.count() == 0
        await first.commit()
        assert await second.profiles.count() == 1


async def test_a_unit_of_work_is_used_once(uow_factory: MakeUow):
    uow = uow_factory()
    async with uow:
        pass
    with pytest.raises(RuntimeError, match="used once"):
        async with uow:
            pass


async def test_the_session_is_only_available_inside_the_block(uow_factory: MakeUow):
    with pytest.raises(RuntimeError, match="not open"):
        _ = uow_factory().session


async def test_bulk_copy_joins_the_units_transaction(uow_factory: MakeUow, session_factory):
    rows = generate_chunk(seed=1, generation_number=1, chunk_index=0, start=0, count=50)
    async with uow_factory() as uow:
        assert await uow.profiles.insert_many(rows) == 50
        assert await uow.profiles.count() == 50
    assert await count_rows(session_factory, "profiles") == 0
    async with uow_factory() as uow:
        await uow.profiles.insert_many(rows)
        await uow.commit()
    assert await count_rows(session_factory, "profiles") == 50


async def test_a_job_stamp_records_success_in_the_same_commit(
    uow_factory: MakeUow, session_factory
):
    async with uow_factory(_stamp()) as uow:
        await uow.profiles.add(_profile("ada"))
        await uow.commit()
    async with session_factory() as session:
        record = await JobRecordRepository(session).get("job-1")
    assert record is not None
    assert (record.status, record.function, record.tries) == ("succeeded", "create_profile", 1)
    assert record.finished_at >= record.started_at


async def test_a_second_delivery_of_a_succeeded_job_is_a_rolled_back_duplicate(
    uow_factory: MakeUow, session_factory
):
    await _create_in_job(uow_factory, "ada", _stamp())
    with pytest.raises(DuplicateJob, match="job-1 already succeeded"):
        await _create_in_job(uow_factory, "grace", _stamp(tries=2))
    async with session_factory() as session:
        assert list(await session.scalars(select(Profile.username))) == ["ada"]
        record = await JobRecordRepository(session).get("job-1")
    assert record is not None
    assert (record.status, record.tries) == ("succeeded", 1)


async def test_a_failed_job_may_succeed_on_a_later_try(uow_factory: MakeUow, session_factory):
    async with uow_factory() as uow:
        await uow.jobs.record_failure(_stamp(), error_type="Boom", message="boom", payload={})
        await uow.commit()
    await _create_in_job(uow_factory, "ada", _stamp(tries=2))
    async with session_factory() as session:
        record = await JobRecordRepository(session).get("job-1")
    assert record is not None
    assert (record.status, record.tries, record.error_type) == ("succeeded", 2, None)


async def test_concurrent_deliveries_of_one_job_commit_once(uow_factory: MakeUow, session_factory):
    outcomes = await asyncio.gather(
        _create_in_job(uow_factory, "ada", _stamp()),
        _create_in_job(uow_factory, "grace", _stamp()),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["DuplicateJob", "NoneType"]
    assert await count_rows(session_factory, "profiles") == 1


async def _create_in_job(uow_factory: MakeUow, username: str, stamp: JobStamp) -> None:
    payload = schemas.CreateProfile(
        username=username, email=f"{username}@example.com", full_name="A B"
    )
    async with uow_factory(stamp) as uow:
        await services.create_profile(uow, payload)


async def test_a_first_record_inserts_the_jobs_success(uow_factory: MakeUow, session_factory):
    await _create_in_job(uow_factory, "ada", _first())
    async with session_factory() as session:
        record = await session.scalar(select(JobRecord).where(JobRecord.job_id == "job-1"))
    assert record is not None
    assert (record.status, record.tries) == ("succeeded", 1)


@pytest.mark.parametrize("earlier", ["failed", "succeeded"])
async def test_a_first_record_meeting_a_row_of_its_job_rolls_everything_back(
    uow_factory: MakeUow, session_factory, earlier: str
):
    async with uow_factory() as uow:
        if earlier == "failed":
            await uow.jobs.record_failure(_stamp(), error_type="Boom", message="boom", payload={})
        else:
            await uow.jobs.record_success(_stamp())
        await uow.commit()
    with pytest.raises(LedgerRowExists, match="job-1"):
        await _create_in_job(uow_factory, "ada", _first())
    assert await count_rows(session_factory, "profiles") == 0
    async with session_factory() as session:
        record = await session.scalar(select(JobRecord).where(JobRecord.job_id == "job-1"))
    assert record is not None
    assert record.status == earlier


async def test_concurrent_first_records_of_one_job_commit_once(
    uow_factory: MakeUow, session_factory
):
    outcomes = await asyncio.gather(
        _create_in_job(uow_factory, "ada", _first()),
        _create_in_job(uow_factory, "grace", _first()),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["LedgerRowExists", "NoneType"]
    assert await count_rows(session_factory, "profiles") == 1


def _first() -> JobStamp:
    return replace(_stamp(), first_record=True)
