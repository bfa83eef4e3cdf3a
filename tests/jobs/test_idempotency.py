"""At-least-once delivery, exactly-once effects: duplicates, fan-out, cron that applies once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from domain.db import utcnow
from domain.models import GenerationChunk, Metric, Profile, ProfileGeneration, Run
from domain.repositories import JobStamp
from domain.schemas import MAX_CHUNKS, MIN_CHUNK_SIZE
from tests.support.rows import job_record, run_statuses, seed_job_record, seed_runs
from worker.lanes import limits_key
from worker.ops.enqueue import enqueue_many
from worker.registry import GENERATE_CHUNK, chunk_job_id
from worker.runtime import delivery
from worker.runtime.delivery import stamp_of

STALE = timedelta(hours=2)
FRESH = timedelta(seconds=0)


async def deliver_twice(harness, function: str, payload: dict, job_id: str) -> tuple[dict, dict]:
    """Run a job, then deliver the very same job id again once arq has forgotten it."""
    await harness.enqueue(function, payload, _job_id=job_id)
    await harness.run()
    first = await harness.result(job_id)
    await harness.forget(job_id)
    await harness.enqueue(function, payload, _job_id=job_id)
    await harness.run()
    second = await harness.result(job_id)
    assert first.success
    assert second.success
    return first.result, second.result


async def test_a_redelivered_create_reports_a_duplicate_and_adds_nothing(harness):
    payload = {"username": "ada", "email": "ada@example.com", "full_name": "Ada L"}

    first, second = await deliver_twice(harness, "create_profile", payload, "create-ada")

    assert first["username"] == "ada"
    assert second == {"duplicate": True, "job_id": "create-ada"}
    assert await harness.count(Profile) == 1
    [record] = await harness.job_records()
    assert (record.status, record.tries, record.duplicates) == ("succeeded", 1, 1)


async def test_a_first_try_that_meets_a_row_of_its_job_runs_again_against_it(harness):
    """A failure recorded under the id before arq's first try (a retried failure
    re-enqueued afresh): the first try's insert meets it, and the job still succeeds once."""
    await seed_job_record(
        harness.session_factory, "create-ada", status="failed", finished_at=utcnow()
    )
    payload = {"username": "ada", "email": "ada@example.com", "full_name": "Ada L"}
    await harness.enqueue("create_profile", payload, _job_id="create-ada")
    await harness.run()

    assert (await harness.result("create-ada")).result["username"] == "ada"
    assert await harness.count(Profile) == 1
    record = await job_record(harness.session_factory, "create-ada")
    assert record is not None
    assert (record.status, record.tries) == ("succeeded", 1)


async def test_a_redelivered_update_applies_once(harness):
    await harness.enqueue(
        "create_profile", {"username": "ada", "email": "ada@example.com", "full_name": "Ada L"}
    )
    await harness.run()
    payload = {"profile_id": 1, "changes": {"bio": "mathematician"}}

    first, second = await deliver_twice(harness, "update_profile", payload, "update-ada")

    assert first["version"] == 2
    assert second == {"duplicate": True, "job_id": "update-ada"}
    async with harness.session_factory() as session:
        profile = await session.get(Profile, 1)
    assert (profile.version, profile.bio) == (2, "mathematician")


@pytest.mark.parametrize(
    ("function", "payload", "table", "rows"),
    [
        ("start_run", {"experiment_id": 1}, Run, 2),  # the seeded run plus one
        ("record_metric", {"run_id": 1, "name": "loss", "step": 3, "value": 0.25}, Metric, 1),
    ],
)
async def test_a_redelivered_insert_applies_once(harness, function, payload, table, rows):
    await seed_runs(harness.session_factory, [FRESH])

    _first, second = await deliver_twice(harness, function, payload, f"{function}-once")

    assert second == {"duplicate": True, "job_id": f"{function}-once"}
    assert await harness.count(table) == rows


@pytest.mark.parametrize(
    ("function", "payload", "table", "rows"),
    [
        ("start_run", {"experiment_id": 1}, Run, 2),
        ("record_metric", {"run_id": 1, "name": "loss", "step": 3, "value": 0.25}, Metric, 1),
    ],
)
async def test_a_minted_id_enqueued_again_by_name_applies_once(
    harness, monkeypatch, function, payload, table, rows
):
    """The id enqueue_many minted for a job, enqueued again once arq forgot it: the second
    enqueue carries no mark, and its first try finds the first one's row."""
    stamps: list[JobStamp] = []

    def noted(*args: Any, **kwargs: Any) -> JobStamp:
        stamps.append(stamp_of(*args, **kwargs))
        return stamps[-1]

    monkeypatch.setattr(delivery, "stamp_of", noted)
    await seed_runs(harness.session_factory, [FRESH])
    [job_id] = await enqueue_many(harness.producer, function, [payload])
    await harness.run()
    await harness.forget(job_id)
    await harness.enqueue(function, payload, _job_id=job_id)
    await harness.run()

    assert [stamp.minted for stamp in stamps] == [True, False]
    assert (await harness.result(job_id)).result == {"duplicate": True, "job_id": job_id}
    assert await harness.count(table) == rows
    [record] = await harness.job_records()
    assert (record.status, record.duplicates) == ("succeeded", 1)


async def test_generate_profiles_fans_out_chunk_jobs_with_fixed_ids(harness):
    job = await harness.enqueue("generate_profiles", {"count": 250, "seed": 7}, _job_id="gen")

    await harness.run()

    plan = (await harness.result(job.job_id)).result
    assert plan == {"generation_id": 1, "total": 250, "chunk_size": 100, "chunks": 3, "key": "gen"}
    inserted = [
        (await harness.result(chunk_job_id(1, i, "gen"))).result["inserted"] for i in range(3)
    ]
    assert inserted == [100, 100, 50]
    assert await harness.count(Profile) == 250
    assert await harness.count(GenerationChunk) == 3


async def test_a_redelivered_generation_and_chunk_add_no_rows(harness):
    await harness.enqueue("generate_profiles", {"count": 250}, _job_id="gen")
    await harness.run()

    await harness.forget("gen")
    await harness.forget(chunk_job_id(1, 2, "gen"))
    await harness.enqueue("generate_profiles", {"count": 250}, _job_id="gen")
    await harness.run()

    chunk = (await harness.result(chunk_job_id(1, 2, "gen"))).result
    assert chunk["duplicate"] is True
    assert chunk.get("inserted", 0) == 0
    assert (await harness.result("gen")).result["generation_id"] == 1
    assert await harness.count(ProfileGeneration) == 1
    assert await harness.count(Profile) == 250
    async with harness.session_factory() as session:
        done = (await session.scalars(select(GenerationChunk.rows_inserted))).all()
    assert sorted(done) == [50, 100, 100]


async def test_the_stale_runs_cron_fails_idle_runs_once_per_tick(harness):
    # arq keeps no result for cron jobs: their outcome is read from the rows and the ledger.
    stale, fresh = await seed_runs(harness.session_factory, [STALE, FRESH])
    tick = "cron:fail_stale_runs:1700000000000"

    await harness.enqueue("cron:fail_stale_runs", _job_id=tick)
    await harness.run()
    assert await run_statuses(harness.session_factory, [stale, fresh]) == ["failed", "running"]

    # A worker whose clock runs late enqueues the same tick once arq has forgotten it.
    [late] = await seed_runs(harness.session_factory, [STALE])
    await harness.forget(tick)
    await harness.enqueue("cron:fail_stale_runs", _job_id=tick)
    worker = await harness.run()
    assert worker.jobs_complete == 1
    assert await run_statuses(harness.session_factory, [late]) == ["running"]
    record = await job_record(harness.session_factory, tick)
    assert (record.function, record.status, record.duplicates) == (
        "fail_stale_runs",
        "succeeded",
        1,
    )

    await harness.enqueue("cron:fail_stale_runs", _job_id="cron:fail_stale_runs:1700000060000")
    await harness.run()
    assert await run_statuses(harness.session_factory, [late]) == ["failed"]


async def test_the_job_history_cron_prunes_old_successes_only(harness):
    now = utcnow()
    for job_id, status, age in [
        ("old-success", "succeeded", timedelta(days=30)),
        ("old-failure", "failed", timedelta(days=30)),
        ("recent-success", "succeeded", timedelta(days=1)),
    ]:
        await seed_job_record(harness.session_factory, job_id, status=status, finished_at=now - age)

    await harness.enqueue("cron:prune_job_history", _job_id="cron:prune_job_history:1")
    await harness.run()

    remaining = {record.job_id: record.status for record in await harness.job_records()}
    assert remaining == {
        "old-failure": "failed",
        "recent-success": "succeeded",
        "cron:prune_job_history:1": "succeeded",
    }


async def test_every_chunk_of_a_generation_at_the_chunk_limit_is_enqueued_and_run(harness):
    count = MAX_CHUNKS * MIN_CHUNK_SIZE
    payload = {"count": count, "chunk_size": MIN_CHUNK_SIZE}
    # As many at once as the worker has slots: the registry's cap would run two at a time.
    await harness.producer.hset(limits_key(harness.settings.queue_name), GENERATE_CHUNK.name, 100)
    await harness.enqueue("generate_profiles", payload, _job_id="big")

    await harness.run()

    assert (await harness.result("big")).result["chunks"] == MAX_CHUNKS
    chunks = [await harness.result(chunk_job_id(1, i, "big")) for i in range(MAX_CHUNKS)]
    assert all(chunk.success for chunk in chunks)
    assert sum(chunk.result["inserted"] for chunk in chunks) == count
    assert await harness.count(GenerationChunk) == MAX_CHUNKS
    assert await harness.count(Profile) == count
