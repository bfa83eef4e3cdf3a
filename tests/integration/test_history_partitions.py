"""The job history's days on PostgreSQL: made ahead, dropped whole by the retention with
what it keeps carried to the default partition, and one record per job id across days."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.db import create_session_factory, utcnow
from domain.repositories import JobStamp
from domain.repositories.history_partitions import day_name, day_start, default_name
from domain.uow import SqlAlchemyUnitOfWork

# Days long past, of these tests alone: the suite's database keeps no partition for them.
FIRST = date(2001, 3, 1)
SECOND = FIRST + timedelta(days=1)


@pytest.fixture
def make_uow(emptied_pg_engine: AsyncEngine):
    sessions = create_session_factory(emptied_pg_engine)

    def make(stamp: JobStamp | None = None) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(sessions, stamp)

    return make


def stamp(job_id: str, day: date, tries: int = 1) -> JobStamp:
    enqueued = day_start(day) + timedelta(hours=12)
    return JobStamp(job_id, "create_profile", tries, utcnow(), enqueued_at=enqueued)


async def rows_in(make_uow, table: str) -> int | None:
    """Rows in ``table``; None when there is no such table."""
    async with make_uow() as uow:
        if await uow.session.scalar(text(f"SELECT to_regclass('{table}')")) is None:
            return None
        return int(await uow.session.scalar(text(f"SELECT count(*) FROM {table}")))


async def test_a_day_made_late_takes_its_rows_from_the_default_partition(make_uow):
    async with make_uow() as uow:
        assert await uow.jobs.record_success(stamp("early", FIRST))
        await uow.commit()
    assert await rows_in(make_uow, default_name("job_records")) == 1

    async with make_uow() as uow:
        assert await uow.jobs.make_days(FIRST, FIRST) == 2  # job_records' and job_tries'
        assert await uow.jobs.make_days(FIRST, FIRST) == 0
        await uow.commit()
    assert await rows_in(make_uow, day_name("job_records", FIRST)) == 1
    assert await rows_in(make_uow, default_name("job_records")) == 0
    async with make_uow() as uow:
        await uow.jobs.forget_before(day_start(SECOND))
        await uow.commit()


async def test_forgetting_drops_whole_days_and_keeps_what_needs_an_operator(make_uow):
    async with make_uow() as uow:
        await uow.jobs.make_days(FIRST, SECOND)
        assert await uow.jobs.record_success(stamp("done", FIRST))
        for job_id in ("handled", "unhandled"):
            await uow.jobs.record_failure(
                stamp(job_id, FIRST), error_type="E", message="m", payload=None
            )
        await uow.jobs.mark_handled(["handled"])
        await uow.jobs.record_retry(
            stamp("retrying", FIRST),
            error_type="E",
            message="m",
            payload=None,
            retry_at=day_start(SECOND),
        )
        assert await uow.jobs.record_success(stamp("next-day", SECOND))
        await uow.commit()

    async with make_uow() as uow:
        forgotten = await uow.jobs.forget_before(day_start(SECOND) + timedelta(hours=1))
        await uow.commit()

    assert (forgotten.days, forgotten.rows, forgotten.kept) == (1, 2, 2)
    assert await rows_in(make_uow, day_name("job_records", FIRST)) is None
    assert await rows_in(make_uow, day_name("job_tries", FIRST)) is None
    async with make_uow() as uow:
        assert await uow.jobs.get("done") is None
        assert await uow.jobs.get("handled") is None
        kept = [await uow.jobs.get(job_id) for job_id in ("unhandled", "retrying", "next-day")]
        assert [record.status for record in kept if record] == ["failed", "retrying", "succeeded"]
        assert [t.try_number for t in await uow.jobs.tries_of("retrying")] == [1]
        # Carried to the default partition, the kept job is still found by its id.
        assert await uow.jobs.record_success(stamp("unhandled", SECOND, tries=2))
        await uow.commit()
    assert await rows_in(make_uow, default_name("job_records")) == 2
    async with make_uow() as uow:
        record = await uow.jobs.get("unhandled")
        assert record is not None
        assert (record.status, record.enqueued_at) == ("succeeded", stamp("x", FIRST).enqueued_at)
        await uow.jobs.forget_before(day_start(SECOND + timedelta(days=1)))
        await uow.commit()


async def test_a_job_id_enqueued_again_on_a_later_day_is_recorded_once(make_uow):
    async with make_uow() as uow:
        await uow.jobs.make_days(FIRST, SECOND)
        await uow.commit()
    async with make_uow(stamp("tick", FIRST)) as uow:
        await uow.commit()
    again = stamp("tick", SECOND)
    async with make_uow() as uow:
        assert not await uow.jobs.record_success(again)
        await uow.jobs.count_duplicate("tick")
        await uow.commit()
    async with make_uow() as uow:
        record = await uow.jobs.get("tick")
        assert record is not None
        assert (record.enqueued_at, record.duplicates) == (stamp("tick", FIRST).enqueued_at, 1)
        await uow.jobs.forget_before(day_start(SECOND + timedelta(days=1)))
        await uow.commit()
