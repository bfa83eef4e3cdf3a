"""New metric points and their job's success in one statement that commits on its own; any
other outcome writes nothing that way and goes the usual way (PostgreSQL only)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError

from domain import schemas, services
from domain.db import create_engine, create_session_factory, utcnow
from domain.errors import RunEnded
from domain.models import Metric, Run
from domain.repositories import JobStamp, LedgerRowExists
from domain.repositories.history_partitions import day_of
from domain.uow import SqlAlchemyUnitOfWork
from tests.support.db import MakeUow, StatementLog, add_tracked_run, count_rows, postgresql_only
from tests.support.rows import eventually, job_record
from worker.runtime.retry import is_transient

pytestmark = postgresql_only


def _first(job_id: str = "job-1", *, minted: bool = False) -> JobStamp:
    now = utcnow()
    payload = {"run_id": 1, "name": "loss", "step": 3, "value": 0.5}
    return JobStamp(
        job_id, "record_metric", 1, now, payload=payload, first_record=True, minted=minted
    )


def _point(run_id: int, value: float = 0.5) -> schemas.RecordMetric:
    return schemas.RecordMetric(run_id=run_id, name="loss", step=3, value=value)


async def _driver_in_transaction(uow) -> bool:
    connection = await uow.session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    return bool(driver.is_in_transaction())


async def test_a_new_point_commits_with_its_jobs_success_in_one_statement(
    uow_factory: MakeUow, statements: StatementLog, session_factory
):
    run = await add_tracked_run(uow_factory)
    async with uow_factory(_first()) as uow:
        with statements.counting() as sent:
            recorded = await services.record_metric(uow, _point(run.id))
        assert not await _driver_in_transaction(uow)  # committed already, on its own
    assert sent == []  # nothing through the session: the one statement went to the driver
    assert (recorded.inserted, recorded.duplicates, recorded.conflicts) == (1, 0, 0)
    assert await count_rows(session_factory, Metric) == 1
    record = await job_record(session_factory, "job-1")
    assert record is not None
    assert (record.status, record.tries, record.function) == ("succeeded", 1, "record_metric")
    assert record.result == recorded.model_dump(mode="json")
    assert record.payload == _first().payload
    assert record.enqueued_at == day_of(record.started_at)


async def test_a_stored_step_writes_nothing_so_and_goes_the_usual_way(
    uow_factory: MakeUow, session_factory
):
    run = await add_tracked_run(uow_factory)
    async with uow_factory() as uow:
        await services.record_metric(uow, _point(run.id, value=0.25))
    async with uow_factory(_first()) as uow:
        recorded = await services.record_metric(uow, _point(run.id))
    assert (recorded.inserted, recorded.conflicts) == (0, 1)
    async with session_factory() as session:
        assert list(await session.scalars(select(Metric.value))) == [0.25]
    record = await job_record(session_factory, "job-1")
    assert record is not None
    assert record.result == recorded.model_dump(mode="json")


async def test_a_run_that_takes_no_point_writes_nothing(uow_factory: MakeUow, session_factory):
    run = await add_tracked_run(uow_factory)
    ended = utcnow() - timedelta(days=1)
    async with session_factory() as session:
        stored = await session.get(Run, run.id)
        assert stored is not None
        stored.status, stored.ended_at, stored.last_activity_at = "completed", ended, ended
        await session.commit()
    with pytest.raises(RunEnded):
        async with uow_factory(_first()) as uow:
            await services.record_metric(uow, _point(run.id))
    assert await count_rows(session_factory, Metric) == 0
    assert await job_record(session_factory, "job-1") is None
    async with session_factory() as session:
        assert (await session.get(Run, run.id)).last_activity_at == ended


@pytest.mark.parametrize("minted", [False, True])
async def test_a_row_of_the_job_under_its_key_fails_the_statement(
    uow_factory: MakeUow, session_factory, minted: bool
):
    run = await add_tracked_run(uow_factory)
    stamp = _first(minted=minted)
    async with uow_factory() as uow:
        await uow.jobs.record_failure(stamp, error_type="Boom", message="boom", payload={})
        await uow.commit()
    with pytest.raises(LedgerRowExists, match="job-1"):
        async with uow_factory(stamp) as uow:
            await services.record_metric(uow, _point(run.id))
    assert await count_rows(session_factory, Metric) == 0


async def test_a_job_id_recorded_under_another_time_is_found_by_its_id(
    uow_factory: MakeUow, session_factory
):
    run = await add_tracked_run(uow_factory)
    earlier = replace(_first(), enqueued_at=utcnow() - timedelta(days=2))
    async with uow_factory() as uow:
        await uow.jobs.record_failure(earlier, error_type="Boom", message="boom", payload={})
        await uow.commit()
    with pytest.raises(LedgerRowExists):
        async with uow_factory(_first()) as uow:
            await services.record_metric(uow, _point(run.id))
    assert await count_rows(session_factory, Metric) == 0


async def test_a_minted_id_is_not_looked_for_under_other_times(
    uow_factory: MakeUow, session_factory
):
    """Its enqueue minted the id: no other enqueue can have recorded it (the mark's promise,
    worker.serialization), so its first record is written under its own key alone."""
    run = await add_tracked_run(uow_factory)
    earlier = replace(_first(), enqueued_at=utcnow() - timedelta(days=2))
    async with uow_factory() as uow:
        await uow.jobs.record_failure(earlier, error_type="Boom", message="boom", payload={})
        await uow.commit()
    async with uow_factory(_first(minted=True)) as uow:
        await services.record_metric(uow, _point(run.id))
    assert await count_rows(session_factory, Metric) == 1
    assert await count_rows(session_factory, "job_records") == 2


def _batch(run_id: int, steps: list[int], value: float = 0.5) -> schemas.RecordMetrics:
    points = [{"name": name, "step": step, "value": value} for step in steps for name in "ab"]
    return schemas.RecordMetrics.model_validate({"run_id": run_id, "points": points})


async def test_a_batch_of_new_points_commits_with_its_jobs_success_in_one_statement(
    uow_factory: MakeUow, statements: StatementLog, session_factory
):
    run = await add_tracked_run(uow_factory)
    async with uow_factory(replace(_first(), function="record_metrics")) as uow:
        with statements.counting() as sent:
            recorded = await services.record_metrics(uow, _batch(run.id, list(range(50))))
        assert not await _driver_in_transaction(uow)
    assert sent == []
    assert (recorded.received, recorded.inserted, recorded.duplicates) == (100, 100, 0)
    assert await count_rows(session_factory, Metric) == 100
    record = await job_record(session_factory, "job-1")
    assert record is not None
    assert (record.status, record.result) == ("succeeded", recorded.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("stored", "steps"),
    [
        ([7], [3, 5, 9]),  # a stored step inside the batch's range: counted the usual way
        ([], [3, 5, 3]),  # a step sent twice
    ],
)
async def test_a_batch_that_may_not_be_all_new_goes_the_usual_way(
    uow_factory: MakeUow, statements: StatementLog, session_factory, stored, steps
):
    run = await add_tracked_run(uow_factory)
    if stored:
        async with uow_factory() as uow:
            await services.record_metrics(uow, _batch(run.id, stored))
    async with uow_factory(_first()) as uow:
        with statements.counting() as sent:
            recorded = await services.record_metrics(uow, _batch(run.id, steps))
    assert sent  # the usual statements, through the session
    assert recorded.received == 2 * len(steps)
    assert recorded.inserted == 2 * len(set(steps) - set(stored))
    assert await count_rows(session_factory, Metric) == 2 * len(set(steps) | set(stored))
    record = await job_record(session_factory, "job-1")
    assert record is not None
    assert record.result == recorded.model_dump(mode="json")


async def test_a_step_written_meanwhile_makes_the_statement_write_nothing(
    uow_factory: MakeUow, session_factory
):
    """Another transaction inserts one of the batch's steps and commits while the statement
    waits on it: the statement yields, and the usual way counts it."""
    run = await add_tracked_run(uow_factory)
    async with session_factory() as other:
        row = {"run_id": run.id, "name": "a", "step": 4, "value": 0.5, "recorded_at": utcnow()}
        await other.execute(insert(Metric).values(row))
        async with uow_factory(_first()) as uow:
            write = asyncio.create_task(services.record_metrics(uow, _batch(run.id, [3, 4])))
            await eventually(lambda: _waiting_on_a_lock(session_factory), what="a lock wait")
            await other.commit()
            recorded = await write
    assert (recorded.inserted, recorded.duplicates) == (3, 1)
    assert await count_rows(session_factory, Metric) == 4


async def test_a_connection_lost_while_pooled_is_a_transient_failure(
    uow_factory: MakeUow, session_factory, pg_database: str
):
    """A worker tests no connection it takes from its pool (JOBS_DB_PRE_PING): one the
    server closed meanwhile fails the statement as a lost connection, which is retried, and
    is not handed out again."""
    run = await add_tracked_run(uow_factory)
    engine = create_engine(pg_database, pool_size=1, overflow=0, pre_ping=False)
    try:
        sessions = create_session_factory(engine)
        async with sessions() as session:
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
        async with session_factory() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as lost:
            async with SqlAlchemyUnitOfWork(sessions, _first()) as uow:
                await services.record_metric(uow, _point(run.id))
        assert lost.value.connection_invalidated
        assert is_transient(lost.value)
        async with SqlAlchemyUnitOfWork(sessions, _first()) as uow:  # a new connection
            await services.record_metric(uow, _point(run.id))
    finally:
        await engine.dispose()
    assert await count_rows(session_factory, Metric) == 1


async def test_a_statement_cancelled_as_it_waits_leaves_its_connection_out_of_the_pool(
    uow_factory: MakeUow, session_factory, pg_database: str
):
    """A timeout or an abort cancels the try mid-statement: nothing half done is handed to
    the next job."""
    run = await add_tracked_run(uow_factory)
    engine = create_engine(pg_database, pool_size=1, overflow=0, pre_ping=False)
    try:
        sessions = create_session_factory(engine)
        async with session_factory() as other:
            row = {
                "run_id": run.id,
                "name": "loss",
                "step": 3,
                "value": 0.5,
                "recorded_at": utcnow(),
            }
            await other.execute(insert(Metric).values(row))

            async def record() -> None:
                async with SqlAlchemyUnitOfWork(sessions, _first()) as uow:
                    await services.record_metric(uow, _point(run.id))

            waiting = asyncio.create_task(record())
            [cancelled] = await eventually(lambda: _waiting_on_a_lock(session_factory))
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        async with sessions() as session:
            assert await session.scalar(text("SELECT pg_backend_pid()")) != cancelled
    finally:
        await engine.dispose()
    assert await count_rows(session_factory, Metric) == 0
    assert await job_record(session_factory, "job-1") is None


async def _waiting_on_a_lock(session_factory) -> list[int]:
    """The backends of this database waiting on a lock."""
    async with session_factory() as session:
        waiting = await session.scalars(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        )
        return list(waiting)
