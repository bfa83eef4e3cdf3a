"""Repositories against PostgreSQL: what they read and write, and what they refuse."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import InvalidRequestError

from domain import progress_queries, services
from domain.db import utcnow
from domain.errors import RunNotFound
from domain.history_queries import failures_statement, recent_statement
from domain.models import Profile
from domain.repositories import JobStamp
from domain.repositories.history_partitions import day_of
from domain.repositories.metric_writes import MetricWrite
from domain.repositories.tracker import ACTIVITY_RESOLUTION
from tests.support.db import (
    MakeUow,
    add_experiment,
    add_profile,
    add_run,
    add_tracked_run,
)


async def test_profile_lookups(uow_factory: MakeUow):
    ada = await add_profile(uow_factory, "ada")
    async with uow_factory() as uow:
        found = await uow.profiles.get(ada.id)
        locked = await uow.profiles.get_for_update(ada.id)
        assert found is locked  # one identity map per session
        assert isinstance(found, Profile)
        assert found.email == "ada@example.com"
        assert await uow.profiles.exists(ada.id)
        assert not await uow.profiles.exists(ada.id + 1)
        assert await uow.profiles.get(ada.id + 1) is None
        assert await uow.profiles.count() == 1


async def test_experiment_listing_filters_by_owner_and_status_and_limits(uow_factory: MakeUow):
    ada, grace = await add_profile(uow_factory, "ada"), await add_profile(uow_factory, "grace")
    first = await add_experiment(uow_factory, ada.id, "first")
    second = await add_experiment(uow_factory, ada.id, "second")
    theirs = await add_experiment(uow_factory, grace.id, "first")
    await add_run(uow_factory, second.id)
    async with uow_factory() as uow:
        by_owner = await uow.experiments.list_with_run_counts(
            owner_id=ada.id, status=None, limit=10
        )
        running = await uow.experiments.list_with_run_counts(
            owner_id=None, status="running", limit=10
        )
        limited = await uow.experiments.list_with_run_counts(owner_id=None, status=None, limit=2)
        # Inside the block: leaving it uncommitted rolls back, which expires what was read.
        assert [(e.id, n) for e, n in by_owner] == [(first.id, 0), (second.id, 1)]
        assert [e.id for e, _ in running] == [second.id]
        assert [e.id for e, _ in limited] == [first.id, second.id]
        assert theirs.id not in {e.id for e, _ in by_owner}


async def test_touch_only_moves_a_stale_activity_stamp(uow_factory: MakeUow):
    run = await add_tracked_run(uow_factory)
    soon = run.started_at + ACTIVITY_RESOLUTION / 2
    later = run.started_at + ACTIVITY_RESOLUTION * 2
    async with uow_factory() as uow:
        await uow.runs.touch(run.id, soon)
        await uow.commit()
    async with uow_factory() as uow:
        stored = await uow.runs.get(run.id)
        assert stored is not None
        assert stored.last_activity_at == run.started_at
        await uow.runs.touch(run.id, later)
        await uow.commit()
    async with uow_factory() as uow:
        stored = await uow.runs.get(run.id)
        assert stored is not None
        assert stored.last_activity_at == later


async def test_fail_stale_fails_idle_running_runs_only(uow_factory: MakeUow):
    owner = await add_profile(uow_factory)
    experiment = await add_experiment(uow_factory, owner.id)
    idle, busy = (
        await add_run(uow_factory, experiment.id),
        await add_run(uow_factory, experiment.id),
    )
    now = utcnow() + timedelta(hours=1)
    async with uow_factory() as uow:
        await uow.runs.touch(busy.id, now)
        failed = await uow.runs.fail_stale(
            cutoff=now - timedelta(minutes=5), now=now, reason="idle"
        )
        live = await uow.runs.experiment_ids_with_live_runs([experiment.id])
        await uow.commit()
    assert failed == [(idle.id, experiment.id)]
    assert live == {experiment.id}
    async with uow_factory() as uow:
        stored = await uow.runs.get(idle.id)
        assert stored is not None
        assert (stored.status, stored.ended_at, stored.failure_reason) == ("failed", now, "idle")


def _write(run_id: int, points: list[dict], overwrite: bool = False) -> MetricWrite:
    return MetricWrite(run_id, points, overwrite, utcnow(), timedelta(seconds=60))


async def test_metric_insert_skips_stored_keys(uow_factory: MakeUow):
    run = await add_tracked_run(uow_factory)
    now = utcnow()
    points = [{"name": "loss", "step": s, "value": 1.0, "recorded_at": now} for s in range(3)]
    async with uow_factory() as uow:
        assert (await uow.metrics.record(_write(run.id, points))).inserted == 3
        again = await uow.metrics.record(_write(run.id, points[1:] + points[:1]))
        assert (again.inserted, again.conflicts) == (0, 0)
        assert await uow.metrics.count(run.id) == 3


async def test_a_metric_insert_marks_the_run_active_as_touch_does(uow_factory: MakeUow):
    run = await add_tracked_run(uow_factory)
    soon = run.started_at + ACTIVITY_RESOLUTION / 2
    later = run.started_at + ACTIVITY_RESOLUTION * 2
    for step, active_at, expected in ((0, soon, run.started_at), (1, later, later)):
        point = {"name": "loss", "step": step, "value": 1.0, "recorded_at": active_at}
        async with uow_factory() as uow:
            write = MetricWrite(run.id, [point], False, active_at, timedelta(seconds=60))
            assert (await uow.metrics.record(write)).inserted == 1
            await uow.commit()
        async with uow_factory() as uow:
            stored = await uow.runs.get(run.id)
            assert stored is not None
            assert stored.last_activity_at == expected


async def test_metric_insert_for_unknown_run_is_run_not_found(uow_factory: MakeUow):
    point = {"name": "loss", "step": 0, "value": 1.0, "recorded_at": utcnow()}
    async with uow_factory() as uow:
        with pytest.raises(RunNotFound, match="run 404 not found"):
            await uow.metrics.record(_write(404, [point]))


async def test_generation_bookkeeping(uow_factory: MakeUow):
    async with uow_factory() as uow:
        generation = await uow.generations.get_or_create(key="k", seed=1, total=10, chunk_size=4)
        again = await uow.generations.get_or_create(key="k", seed=9, total=99, chunk_size=9)
        assert again is generation
        assert (again.seed, again.total) == (1, 10)
        assert await uow.generations.claim_chunk(generation.id, 0, 4)
        assert not await uow.generations.claim_chunk(generation.id, 0, 4)
        assert await uow.generations.claim_chunk(generation.id, 2, 2)
        status = await uow.generations.status(generation.id)
        assert status is not None
        assert (status.chunks, status.chunks_done, status.rows_done) == (3, 2, 6)
        assert await uow.generations.status(generation.id + 1) is None


async def test_job_records_keep_successes_and_forget_old_ones(uow_factory: MakeUow):
    old = JobStamp("old", "create_profile", 1, utcnow())
    failed = JobStamp("failed", "create_profile", 3, utcnow())
    async with uow_factory() as uow:
        assert await uow.jobs.record_success(old)
        assert await uow.jobs.record_failure(
            failed, error_type="ProfileNotFound", message="gone", payload={"a": 1}
        )
        assert not await uow.jobs.record_failure(old, error_type="X", message="x", payload=None)
        await uow.jobs.count_duplicate("old")
        await uow.commit()
    async with uow_factory() as uow:
        record = await uow.jobs.get("old")
        assert record is not None
        assert (record.status, record.duplicates) == ("succeeded", 1)
        assert [r.job_id for r in await uow.jobs.list_failed(10)] == ["failed"]
        kept = await uow.jobs.get("failed")
        assert kept is not None
        assert (kept.error_type, kept.payload) == ("ProfileNotFound", {"a": 1})
        assert (await uow.jobs.forget_before(utcnow() - timedelta(days=1))).rows == 0
        # Both were recorded without an enqueue time: under their start's day, whole.
        forgotten = await uow.jobs.forget_before(day_of(utcnow()) + timedelta(days=1))
        assert (forgotten.rows, forgotten.kept) == (1, 1 if forgotten.days else 0)
        assert await uow.jobs.get("old") is None
        assert await uow.jobs.get("failed") is not None


@pytest.mark.parametrize("text", ["it's", "back\\slash", "x' OR '1'='1", "--", "é ünï 🎉"])
async def test_history_filters_written_into_the_sql_match_their_text_only(
    uow_factory: MakeUow, text: str
):
    """Status and function filters are inlined as literals (for the plans): quoted right."""
    async with uow_factory() as uow:
        await uow.jobs.record_success(JobStamp("odd", text, 1, utcnow(), parent_id=text))
        await uow.jobs.record_success(JobStamp("plain", "create_profile", 1, utcnow()))
        await uow.commit()
    async with uow_factory() as uow:
        listed = await uow.jobs.list_recent(status="succeeded", function=text, limit=10)
        children = await uow.jobs.children_of(text, status="succeeded", limit=10)
        assert [r.job_id for r in listed] == ["odd"]
        assert [r.job_id for r in children] == ["odd"]
        assert await uow.jobs.list_recent(status=text, function=None, limit=10) == []


async def test_lists_of_jobs_leave_payloads_and_results_unread(uow_factory: MakeUow):
    """A page of 1,000 failures with 64 KiB payloads took 1.7 GB to list when they were read."""
    stamp = JobStamp("child", "record_metrics", 1, utcnow(), parent_id="parent")
    async with uow_factory() as uow:
        await uow.jobs.record_failure(
            stamp, error_type="E", message="m", payload={"points": [{}] * 1000}
        )
        await uow.commit()
    async with uow_factory() as uow:
        for listed in (
            await uow.jobs.list_failed(10),
            await uow.jobs.list_recent(status=None, function=None, limit=10),
        ):
            assert [view.job_id for view in listed] == ["child"]
        for statement in (
            failures_statement(10),
            recent_statement(state=None, function=None, limit=10, before=None),
        ):
            selected = statement.sql.removeprefix("SELECT ").split(" FROM ")[0].split(", ")
            assert "job_id" in selected
            assert not {"payload", "result"} & set(selected)
        children = await uow.jobs.children_of("parent", status="failed", limit=10)
        assert [record.job_id for record in children] == ["child"]
        with pytest.raises(InvalidRequestError, match="raiseload"):
            _ = children[0].payload
        with pytest.raises(InvalidRequestError, match="raiseload"):
            _ = children[0].result
    async with uow_factory() as uow:
        record = await uow.jobs.get("child")
        assert record is not None
        assert record.payload == {"points": [{}] * 1000}


async def test_a_submissions_totals_are_added_up_a_page_at_a_time(
    uow_factory: MakeUow, monkeypatch
):
    monkeypatch.setattr(progress_queries, "RESULTS_PAGE", 2)
    async with uow_factory() as uow:
        for index in range(5):
            stamp = JobStamp(f"batch:{index}", "record_metrics", 1, utcnow(), parent_id="batch")
            await uow.jobs.record_success(stamp, result={"run_id": 1, "inserted": index})
        await uow.commit()
    async with uow_factory() as uow:
        pages = [page async for page in progress_queries.results_of(uow.jobs.rows, "batch", 9)]
        first = [page async for page in progress_queries.results_of(uow.jobs.rows, "batch", 3)]
        submission = await services.get_submission(uow, "batch")
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(result["inserted"] for page in pages for result in page if result) == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert [len(page) for page in first] == [2, 1]
    assert submission is not None
    assert submission.totals == {"inserted": 10}
