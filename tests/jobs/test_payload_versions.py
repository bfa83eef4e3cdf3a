"""A job's payload version: run at the worker's version (upgraded when older), left for
another worker when newer, refused when older than the job accepts."""

from __future__ import annotations

from dataclasses import replace

import pytest
from arq.constants import retry_key_prefix
from arq.jobs import Job
from sqlalchemy import select

from domain.models import JobTry, Metric
from domain.services import get_job
from domain.uow import SqlAlchemyUnitOfWork
from tests.support.fleet import start_a_run
from worker.ops.actions import enqueue_once
from worker.ops.enqueue import VERSION_KWARG, enqueue_many
from worker.ops.job_notes import read_retry_note
from worker.ops.job_state import known_outcome
from worker.registry import JOBS, RECORD_METRIC
from worker.serialization import deserialize
from worker.testing.schema_change import NEXT_VERSION, RECORD_METRIC_NEXT, use_next_registry


@pytest.fixture
def next_registry(monkeypatch):
    monkeypatch.setitem(JOBS, RECORD_METRIC.name, JOBS[RECORD_METRIC.name])
    use_next_registry()


def point(run_id: int, step: int) -> dict:
    return {"run_id": run_id, "name": "loss", "step": step, "value": step / 2}


def next_point(run_id: int, step: int) -> dict:
    return {"run_id": run_id, "metric": "loss", "step": step, "value": step / 2}


async def steps(harness) -> list[int]:
    async with harness.session_factory() as session:
        return list((await session.scalars(select(Metric.step).order_by(Metric.step))).all())


async def tries_of(harness, job_id: str) -> list[JobTry]:
    async with harness.session_factory() as session:
        statement = (
            select(JobTry)
            .where(JobTry.job_id == job_id)
            .order_by(JobTry.enqueued_at, JobTry.try_number)
        )
        return list((await session.scalars(statement)).all())


async def test_a_newer_worker_runs_what_older_producers_sent(harness, next_registry):
    run_id = await start_a_run(harness.session_factory)
    await harness.enqueue("record_metric", point(run_id, 0), _job_id="plain")  # no version
    await harness.enqueue("record_metric", point(run_id, 1), _job_id="v1", **{VERSION_KWARG: 1})
    await enqueue_many(harness.producer, "record_metric", [next_point(run_id, 2)], ["v2"])
    await harness.enqueue("record_metric", _job_id="as-kwargs", **point(run_id, 3))
    await harness.run()

    assert await steps(harness) == [0, 1, 2, 3]
    records = {record.job_id: record for record in await harness.job_records()}
    assert {(r.status, r.tries) for r in records.values()} == {("succeeded", 1)}
    kept = {job_id: record.payload or {} for job_id, record in records.items()}
    assert {job_id: (p.get("metric"), "name" in p) for job_id, p in kept.items()} == {
        "plain": ("loss", False),  # upgraded: the history keeps it at this worker's version
        "v1": ("loss", False),
        "v2": ("loss", False),
        "as-kwargs": ("loss", False),
    }


async def sent_kwargs(harness, job_id: str) -> dict:
    info = await Job(job_id, harness.producer, _deserializer=deserialize).info()
    assert info is not None
    return info.kwargs


async def test_producers_send_the_version_only_once_there_is_a_second(harness, monkeypatch):
    services = harness.services()
    for function in ("record_metric", "create_profile"):
        await enqueue_many(harness.producer, function, [point(1, 0)], [f"{function}:many"])
        await enqueue_once(services, function, point(1, 0), f"{function}:once")
    monkeypatch.setitem(JOBS, RECORD_METRIC.name, RECORD_METRIC_NEXT)
    await enqueue_many(harness.producer, "record_metric", [next_point(1, 0)], ["next:many"])
    await enqueue_once(services, "record_metric", next_point(1, 0), "next:once")

    sent = {job_id: await sent_kwargs(harness, job_id) for job_id in await queued(harness)}
    next_version = {VERSION_KWARG: NEXT_VERSION}
    assert sent == {  # version 1 is all today's workers can read: it is sent as nothing
        "record_metric:many": {},
        "record_metric:once": {},
        "create_profile:many": {},
        "create_profile:once": {},
        "next:many": next_version,
        "next:once": next_version,
    }


async def queued(harness) -> list[str]:
    ids = await harness.producer.zrange(harness.settings.queue_name, 0, -1)
    return [job_id.decode() for job_id in ids]


async def test_a_payload_too_new_waits_for_a_worker_that_knows_it(harness):
    harness.settings.payload_version_grace = 1
    run_id = await start_a_run(harness.session_factory)
    options = {"_job_id": "ahead", VERSION_KWARG: NEXT_VERSION}
    await harness.enqueue("record_metric", next_point(run_id, 0), **options)
    await harness.run()  # put back until the grace period is over, then failed

    [record] = await harness.job_records()
    failed = ("failed", "PayloadVersionUnknown", 1)
    assert (record.status, record.error_type, record.tries) == failed
    assert "JOBS_PAYLOAD_VERSION_GRACE" in (record.error_message or "")
    assert record.retryable  # once a worker that knows it is deployed
    assert record.payload == next_point(run_id, 0)
    deferrals = await tries_of(harness, "ahead")
    assert deferrals  # as many as fit in the grace period: at least one
    assert {(t.try_number, t.error_type) for t in deferrals} == {(1, "PayloadVersionAhead")}
    assert "newer than this worker knows" in (deferrals[0].error_message or "")
    assert await steps(harness) == []
    async with SqlAlchemyUnitOfWork(harness.session_factory) as uow:
        detail = await get_job(uow, "ahead")  # the console's job page: its earlier tries
    assert [t.error_type for t in detail.earlier_tries] == [t.error_type for t in deferrals]


async def test_a_deferral_spends_no_try_and_says_why_while_it_waits(harness):
    run_id = await start_a_run(harness.session_factory)
    options = {"_job_id": "ahead", VERSION_KWARG: NEXT_VERSION}
    await harness.enqueue("record_metric", next_point(run_id, 0), **options)
    await harness.run(max_burst_jobs=1)  # one delivery, then the worker stops

    note = await read_retry_note(harness.producer, "ahead")
    assert note is not None
    assert (note["tries"], note["error_type"]) == (1, "PayloadVersionAhead")
    assert await harness.producer.get(retry_key_prefix + "ahead") == b"0"
    [record] = await harness.job_records()
    assert (record.status, record.next_retry_at is not None) == ("retrying", True)
    shown = await known_outcome(harness.services(), "ahead")  # `jobs status`, the console
    assert (shown.state, shown.tries, shown.error.type) == ("retrying", 1, "PayloadVersionAhead")
    assert "newer than this worker knows (versions 1 to 1)" in shown.error.message
    assert shown.next_retry_at is not None


@pytest.mark.parametrize(
    ("version", "problem"),
    [(0, "a version number from 1"), ("2", "a version number from 1"), (1, "older than")],
)
async def test_a_version_refused_fails_once_saying_why(harness, monkeypatch, version, problem):
    monkeypatch.setitem(
        JOBS, RECORD_METRIC.name, replace(RECORD_METRIC_NEXT, accepts_from=2, upgraders={})
    )
    options = {"_job_id": "refused", VERSION_KWARG: version}
    await harness.enqueue("record_metric", point(1, 0), **options)
    await harness.run()

    [record] = await harness.job_records()
    refused = ("failed", "InvalidPayload", False)
    assert (record.status, record.error_type, record.retryable) == refused
    assert problem in (record.error_message or "")


async def test_an_upgrader_that_cannot_read_the_payload_fails_it_once(harness, next_registry):
    payload = {"run_id": 1, "step": 0, "value": 1.0}  # no name for the upgrader to rename
    await harness.enqueue("record_metric", payload, _job_id="odd")
    await harness.run()

    [record] = await harness.job_records()
    assert (record.status, record.error_type) == ("failed", "InvalidPayload")
    assert "could not be upgraded: KeyError('name')" in (record.error_message or "")
