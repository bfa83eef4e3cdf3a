"""Every delivery leaves its mark in the history: results, tries, parents, and what Redis
keeps for the history while the database is away."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from domain.models import JobRecord, JobTry
from domain.repositories import JobStamp, ProfileRepository
from tests.support.faults import connection_lost, failing_profile_inserts
from worker.ops.enqueue import PARENT_KWARG
from worker.ops.job_notes import read_retry_note
from worker.registry import chunk_job_id
from worker.runtime.outbox import (
    DEAD_LETTERS_KEY,
    OUTBOX_KEY,
    OutboxDrainer,
    defer_failure,
    drain_outbox,
)

PROFILE = {"username": "ada", "email": "ada@example.com", "full_name": "Ada L"}


async def records(harness) -> dict[str, JobRecord]:
    return {record.job_id: record for record in await harness.job_records()}


async def tries(harness, job_id: str) -> list[JobTry]:
    async with harness.session_factory() as session:
        statement = select(JobTry).where(JobTry.job_id == job_id).order_by(JobTry.try_number)
        return list((await session.scalars(statement)).all())


async def test_a_success_keeps_its_result_worker_and_small_payload(harness):
    job = await harness.enqueue("create_profile", PROFILE, _job_id="made")
    await harness.run()

    record = (await records(harness))["made"]
    result = await job.result(timeout=1)
    assert (record.status, record.tries, record.result) == ("succeeded", 1, result)
    assert record.payload == PROFILE
    assert ":" in (record.worker or "")  # host:pid
    assert record.finished_at >= record.started_at


async def test_a_retried_try_is_kept_with_its_error_and_next_try(harness, monkeypatch):
    failing_profile_inserts(monkeypatch, connection_lost, times=1)
    await harness.enqueue("create_profile", PROFILE, _job_id="flaky")
    await harness.run()

    [retried] = await tries(harness, "flaky")
    assert (retried.try_number, retried.error_type) == (1, "OperationalError")
    assert "connection reset" in (retried.error_message or "")
    assert retried.retry_at is not None
    assert retried.retry_at > retried.started_at
    record = (await records(harness))["flaky"]
    assert (record.status, record.tries, record.error_type) == ("succeeded", 2, None)


async def test_a_retry_leaves_a_note_in_redis_for_producers(harness, monkeypatch):
    failing_profile_inserts(monkeypatch, connection_lost, times=10)
    await harness.enqueue("create_profile", PROFILE, _job_id="stuck")
    await harness.run()  # tries 1 and 2 are retried, try 3 (the last) fails for good

    note = await read_retry_note(harness.producer, "stuck")
    assert note is not None
    assert (note["tries"], note["error_type"]) == (2, "OperationalError")
    assert note["retry_at"]


async def test_a_failure_a_retry_cannot_change_is_marked_so(harness):
    await harness.enqueue("update_profile", {"profile_id": 9, "changes": {"bio": "x"}}, _job_id="u")
    await harness.enqueue("start_run", {"experiment_id": "x"}, _job_id="bad")
    await harness.run()

    history = await records(harness)
    assert (history["u"].status, history["u"].retryable) == ("failed", False)
    assert (history["bad"].error_type, history["bad"].retryable) == ("InvalidPayload", False)


async def test_a_bug_may_be_fixed_so_its_failure_stays_retryable(harness, monkeypatch):
    async def broken(*_args: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(ProfileRepository, "add", broken)
    await harness.enqueue("create_profile", PROFILE, _job_id="bug")
    await harness.run()

    record = (await records(harness))["bug"]
    assert (record.status, record.error_type, record.retryable) == ("failed", "KeyError", True)


async def test_generation_chunks_and_batches_name_their_parent(harness):
    await harness.enqueue("generate_profiles", {"count": 250}, _job_id="gen")
    points = [{"name": "loss", "step": 0, "value": 1.0}]
    batch = {"run_id": 1, "points": points}
    await harness.enqueue("record_metrics", batch, _job_id="file:0", **{PARENT_KWARG: "file"})
    await harness.run()

    history = await records(harness)
    chunks = [chunk_job_id(1, index, "gen") for index in range(3)]
    assert {history[chunk].parent_id for chunk in chunks} == {"gen"}
    assert history["gen"].parent_id is None
    # The batch failed (no run 1), and still names its submission.
    assert (history["file:0"].parent_id, history["file:0"].status) == ("file", "failed")


async def test_the_parent_keyword_never_reaches_the_payload(harness):
    await harness.enqueue("create_profile", PROFILE, _job_id="child", **{PARENT_KWARG: "p"})
    await harness.run()

    record = (await records(harness))["child"]
    assert (record.status, record.parent_id, record.payload) == ("succeeded", "p", PROFILE)


@pytest.mark.parametrize("pending", [1, 250])
async def test_failures_kept_in_redis_reach_the_history_once_it_answers(harness, pending):
    stamp = {
        "job_id": "", "function": "create_profile", "tries": 8, "worker": "w:1",
        "started_at": "2026-11-29T10:00:00+00:00", "parent_id": None, "payload": None,
    }  # fmt: skip
    entries = [
        orjson.dumps({"stamp": {**stamp, "job_id": f"lost:{n}"}, "error_type": "OperationalError",
                      "message": "the database was away", "payload": PROFILE, "retryable": True})
        for n in range(pending)
    ]  # fmt: skip
    await harness.producer.lpush(OUTBOX_KEY, *entries)

    services = harness.services()
    try:
        assert await drain_outbox(services) == pending
    finally:
        await services.close()

    history = await records(harness)
    assert len(history) == pending
    assert {(r.status, r.tries, r.error_type) for r in history.values()} == {
        ("failed", 8, "OperationalError")
    }
    assert await harness.producer.llen(OUTBOX_KEY) == 0


async def test_an_entry_the_history_refuses_is_set_aside_and_the_rest_written(harness):
    def entry(job_id: str) -> bytes:
        stamp = {
            "job_id": job_id,
            "function": "create_profile",
            "tries": 1,
            "worker": "w:1",
            "started_at": "2026-11-29T10:00:00+00:00",
            "parent_id": None,
            "payload": None,
        }
        return orjson.dumps({"stamp": stamp, "error_type": "OperationalError",
                             "message": "away", "payload": None, "retryable": True})  # fmt: skip

    # Oldest last (LPUSH): a good one, one too long for the history, corrupt ones (not JSON,
    # not an object, a stamp that is not one), a good one.
    await harness.producer.lpush(OUTBOX_KEY, entry("first"), entry("x" * 300), b"{not json",
                                 b"[1, 2]", b'{"stamp": [1]}', entry("last"))  # fmt: skip
    services = harness.services()
    try:
        assert await drain_outbox(services) == 2
    finally:
        await services.close()

    assert set(await records(harness)) == {"first", "last"}
    assert await harness.producer.llen(OUTBOX_KEY) == 0
    assert await harness.producer.llen(DEAD_LETTERS_KEY) == 4


async def test_a_job_id_too_long_for_the_history_fails_once_without_a_record(harness):
    await harness.enqueue("create_profile", PROFILE, _job_id="j" * 201)
    await harness.enqueue("create_profile", PROFILE, _job_id="fine")
    worker = await harness.run()

    assert (worker.jobs_failed, worker.jobs_complete, worker.jobs_retried) == (1, 1, 0)
    info = await harness.result("j" * 201)
    assert info.result.type_name == "InvalidPayload"
    assert "at most 200 characters" in info.result.message
    assert set(await records(harness)) == {"fine"}


async def test_a_parent_that_is_not_a_job_id_is_refused(harness):
    await harness.enqueue("create_profile", PROFILE, _job_id="odd", **{PARENT_KWARG: 7})
    await harness.run()

    info = await harness.result("odd")
    assert info.result.type_name == "InvalidPayload"
    assert PARENT_KWARG in info.result.message


async def test_the_drainer_drains_its_own_entries_at_once_and_looks_for_others_seldom(harness):
    """An idle worker's drainer sends one command a minute: the look for other workers'
    entries; one this worker kept is drained at its next turn."""
    failure = {"error_type": "OperationalError", "message": "away", "payload": None}
    services = harness.services()
    drainer = OutboxDrainer(services, look_every=3600)
    try:
        await drainer.tick()  # a worker starting looks at once: nothing kept
        theirs = {"stamp": {"job_id": "theirs", "function": "create_profile", "tries": 1,
                            "started_at": "2026-11-29T10:00:00+00:00"}, **failure}  # fmt: skip
        await harness.producer.lpush(OUTBOX_KEY, orjson.dumps(theirs))
        await drainer.tick()
        assert await harness.producer.llen(OUTBOX_KEY) == 1  # not looked for within the hour

        mine = JobStamp("mine", "create_profile", 1, datetime.now(UTC), worker="w:1")
        await defer_failure(services.redis, mine, {**failure, "retryable": True})
        await drainer.tick()
    finally:
        await services.close()

    assert await harness.producer.llen(OUTBOX_KEY) == 0
    assert set(await records(harness)) == {"theirs", "mine"}
