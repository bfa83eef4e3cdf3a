"""No silent loss: duplicates, conflicts and overwrites counted exactly, late points refused.

Each test runs on PostgreSQL (one statement per batch) and SQLite (read, then write).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from domain import schemas, services
from domain.db import utcnow
from domain.errors import RunEnded, RunNotFound
from domain.models import Metric, Run
from domain.repositories.metric_writes_pg import COPY_FROM
from domain.views import MAX_CONFLICTS_NAMED, MetricsRecorded
from tests.support.db import MakeUow, add_tracked_run


async def _send(
    uow_factory: MakeUow, run_id: int, points: list[tuple[int, float]], **policy: Any
) -> MetricsRecorded:
    payload = schemas.RecordMetrics.model_validate(
        {
            "run_id": run_id,
            "points": [{"name": "loss", "step": step, "value": value} for step, value in points],
            **policy,
        }
    )
    async with uow_factory() as uow:
        return await services.record_metrics(uow, payload)


def _counts(recorded: MetricsRecorded) -> tuple[int, int, int, int, int]:
    r = recorded
    return (r.received, r.inserted, r.duplicates, r.conflicts, r.overwritten)


async def _stored(session_factory, run_id: int) -> dict[int, float]:
    async with session_factory() as session:
        rows = await session.execute(
            select(Metric.step, Metric.value).where(Metric.run_id == run_id).order_by(Metric.step)
        )
        return dict(rows.all())  # type: ignore[arg-type]


async def _end(session_factory, run_id: int, status: str, ago: timedelta) -> None:
    async with session_factory() as session:
        await session.execute(
            update(Run).where(Run.id == run_id).values(status=status, ended_at=utcnow() - ago)
        )
        await session.commit()


async def test_another_value_for_a_stored_step_is_a_conflict_and_the_value_is_kept(
    uow_factory, session_factory
):
    run = await add_tracked_run(uow_factory)
    await _send(uow_factory, run.id, [(0, 0.93)])
    again = await _send(uow_factory, run.id, [(0, -0.5)])
    assert _counts(again) == (1, 0, 0, 1, 0)
    assert [(c.name, c.step, c.stored, c.sent) for c in again.conflicting] == [
        ("loss", 0, 0.93, -0.5)
    ]
    assert await _stored(session_factory, run.id) == {0: 0.93}


async def test_a_mixed_batch_counts_new_duplicate_and_conflicting_points(
    uow_factory, session_factory
):
    run = await add_tracked_run(uow_factory)
    await _send(uow_factory, run.id, [(step, step / 10) for step in range(10)])
    # Steps 5-6 sent again as they are, 7-9 with other values, 10-14 new.
    batch = [(s, s / 10) for s in (5, 6)] + [(s, -1.0) for s in (7, 8, 9)]
    batch += [(s, s / 10) for s in range(10, 15)]
    recorded = await _send(uow_factory, run.id, batch)
    assert _counts(recorded) == (10, 5, 2, 3, 0)
    assert sorted(c.step for c in recorded.conflicting) == [7, 8, 9]
    assert await _stored(session_factory, run.id) == {s: s / 10 for s in range(15)}


async def test_overwrite_replaces_conflicting_values_and_counts_them(uow_factory, session_factory):
    run = await add_tracked_run(uow_factory)
    await _send(uow_factory, run.id, [(step, 1.0) for step in range(5)])
    recorded = await _send(
        uow_factory, run.id, [(0, 1.0), (1, 2.0), (2, 3.0), (7, 4.0)], on_conflict="overwrite"
    )
    assert _counts(recorded) == (4, 1, 1, 2, 2)
    assert sorted((c.step, c.stored, c.sent) for c in recorded.conflicting) == [
        (1, 1.0, 2.0),
        (2, 1.0, 3.0),
    ]
    assert await _stored(session_factory, run.id) == {
        0: 1.0,
        1: 2.0,
        2: 3.0,
        3: 1.0,
        4: 1.0,
        7: 4.0,
    }


@pytest.mark.parametrize(
    ("on_conflict", "counts", "final"),
    [("keep", (4, 1, 2, 1, 0), 1.0), ("overwrite", (4, 1, 1, 2, 2), 1.0)],
)
async def test_a_step_sent_several_times_in_one_batch_meets_each_earlier_point(
    uow_factory, session_factory, on_conflict, counts, final
):
    """As if sent one by one: keep compares each to the first, overwrite to the one before."""
    run = await add_tracked_run(uow_factory)
    points = [(3, 1.0), (3, 1.0), (3, 2.0), (3, 1.0)]
    recorded = await _send(uow_factory, run.id, points, on_conflict=on_conflict)
    assert _counts(recorded) == counts
    assert await _stored(session_factory, run.id) == {3: final}


async def test_zero_and_negative_zero_are_the_same_value(uow_factory):
    run = await add_tracked_run(uow_factory)
    await _send(uow_factory, run.id, [(0, 0.0)])
    assert _counts(await _send(uow_factory, run.id, [(0, -0.0)])) == (1, 0, 1, 0, 0)


async def test_conflicts_are_all_counted_and_a_few_named(uow_factory, session_factory):
    run = await add_tracked_run(uow_factory)
    await _send(uow_factory, run.id, [(step, 0.0) for step in range(1000)])
    recorded = await _send(uow_factory, run.id, [(step, 1.0) for step in range(1000)])
    assert _counts(recorded) == (1000, 0, 0, 1000, 0)
    assert len(recorded.conflicting) == MAX_CONFLICTS_NAMED
    assert set((await _stored(session_factory, run.id)).values()) == {0.0}


async def test_concurrent_conflicting_batches_count_every_point_once(uow_factory, session_factory):
    run = await add_tracked_run(uow_factory)
    outcomes = await asyncio.gather(
        *(_send(uow_factory, run.id, [(s, float(n)) for s in range(100)]) for n in range(3))
    )
    assert sum(o.inserted for o in outcomes) == 100
    assert sum(o.conflicts for o in outcomes) == 200
    assert sum(o.duplicates for o in outcomes) == 0
    assert len(set((await _stored(session_factory, run.id)).values())) == 1


# Both ways PostgreSQL writes a batch: one upsert statement, or a check and a COPY.
SIZES = [2, COPY_FROM]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("status", ["completed", "failed"])
async def test_points_for_a_run_ended_past_the_grace_are_refused(
    uow_factory, session_factory, status, size
):
    run = await add_tracked_run(uow_factory)
    await _send(uow_factory, run.id, [(0, 1.0)])
    await _end(session_factory, run.id, status, ago=timedelta(seconds=120))
    with pytest.raises(RunEnded, match=rf"run {run.id} is {status} \(ended at .*60 s after"):
        await _send(uow_factory, run.id, [(s, 2.0) for s in range(size)], late_seconds=60)
    assert await _stored(session_factory, run.id) == {0: 1.0}


@pytest.mark.parametrize("size", SIZES)
async def test_recording_marks_the_run_active(uow_factory, session_factory, size):
    run = await add_tracked_run(uow_factory)
    idle_since = utcnow() - timedelta(hours=1)
    async with session_factory() as session:
        await session.execute(
            update(Run).where(Run.id == run.id).values(last_activity_at=idle_since)
        )
        await session.commit()
    await _send(uow_factory, run.id, [(s, 1.0) for s in range(size)])
    async with session_factory() as session:
        stamp = await session.scalar(select(Run.last_activity_at).where(Run.id == run.id))
    assert stamp > utcnow() - timedelta(minutes=1)


async def test_points_within_the_grace_after_the_end_are_recorded(uow_factory, session_factory):
    run = await add_tracked_run(uow_factory)
    await _end(session_factory, run.id, "completed", ago=timedelta(seconds=120))
    recorded = await _send(uow_factory, run.id, [(0, 1.0)], late_seconds=600)
    assert _counts(recorded) == (1, 1, 0, 0, 0)
    assert await _stored(session_factory, run.id) == {0: 1.0}


@pytest.mark.parametrize("size", SIZES)
async def test_an_unknown_run_is_still_run_not_found(uow_factory, size):
    with pytest.raises(RunNotFound, match="run 404 not found"):
        await _send(uow_factory, 404, [(s, 1.0) for s in range(size)])


@pytest.mark.parametrize("one_given", [True, False])
@pytest.mark.parametrize("size", SIZES)
async def test_recorded_at_is_kept_as_given_else_the_time_of_the_write(
    uow_factory, session_factory, size, one_given
):
    run = await add_tracked_run(uow_factory)
    given = utcnow() - timedelta(days=3)
    points = [{"name": "loss", "step": s, "value": 1.0} for s in range(size)]
    if one_given:
        points[0]["recorded_at"] = given.isoformat()
    payload = schemas.RecordMetrics.model_validate({"run_id": run.id, "points": points})
    async with uow_factory() as uow:
        await services.record_metrics(uow, payload)
    async with session_factory() as session:
        stamps = dict(
            (await session.execute(select(Metric.step, Metric.recorded_at))).all()  # type: ignore[arg-type]
        )
    assert (stamps[0] == given) is one_given
    assert all(abs(stamps[s] - utcnow()) < timedelta(minutes=1) for s in range(1, size))
