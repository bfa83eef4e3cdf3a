"""Reading metrics back, on PostgreSQL and SQLite: every bucket's numbers against a
brute-force computation in Python over the same generated points."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest
from sqlalchemy.exc import IntegrityError

from domain import services
from domain.errors import ExperimentNotFound, RunNotFound
from domain.metric_queries import MetricHistoryQuery, MetricPageQuery
from domain.schemas import INT32_MAX
from domain.services import metric_reads as metric_read_services
from domain.services import tracker as tracker_services
from domain.views import MetricBucket
from tests.support.db import MakeUow, add_experiment, add_profile, add_run
from tests.support.rows import store_points

Points = dict[int, float]  # step -> value


@dataclass(frozen=True)
class Tracked:
    experiment_id: int
    run_ids: list[int]


@pytest.fixture
async def tracked(uow_factory: MakeUow) -> Tracked:
    owner = await add_profile(uow_factory)
    experiment = await add_experiment(uow_factory, owner.id)
    runs = [await add_run(uow_factory, experiment.id) for _ in range(3)]
    return Tracked(experiment.id, [run.id for run in runs])


def generated(count: int, *, seed: int, top: int = 100_000) -> Points:
    """``count`` points at random steps (so with gaps), noisy values around a decay."""
    rng = random.Random(seed)
    steps = rng.sample(range(top), count)
    return {s: math.exp(-s / top) + rng.gauss(0, 0.1) for s in steps}


def brute_force(runs: dict[int, Points], buckets: int) -> dict[int, list[MetricBucket]]:
    """The buckets as the definition says, point by point: one step range for all runs."""
    steps = [step for points in runs.values() for step in points]
    if not steps:
        return {run_id: [] for run_id in runs}
    low, width = min(steps), max(steps) - min(steps) + 1
    expected = {}
    for run_id, points in runs.items():
        grouped: dict[int, list[int]] = {}
        for step in sorted(points):
            grouped.setdefault((step - low) * buckets // width, []).append(step)
        expected[run_id] = [
            MetricBucket(
                first_step=group[0],
                last_step=group[-1],
                points=len(group),
                min=min(points[s] for s in group),
                max=max(points[s] for s in group),
                mean=math.fsum(points[s] for s in group) / len(group),
                last=points[group[-1]],
            )
            for _, group in sorted(grouped.items())
        ]
    return expected


async def history(uow_factory: MakeUow, run_ids: list[int], buckets: int, **bounds):
    query = MetricHistoryQuery(run_ids=run_ids, name="loss", buckets=buckets, **bounds)
    async with uow_factory() as uow:
        return await services.metric_history(uow, query)


def assert_same(got: list[MetricBucket], expected: list[MetricBucket]) -> None:
    assert len(got) == len(expected)
    for bucket, want in zip(got, expected, strict=True):
        exact = ("first_step", "last_step", "points", "min", "max", "last")
        assert bucket.model_dump(include=set(exact)) == want.model_dump(include=set(exact))
        assert bucket.mean == pytest.approx(want.mean, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("buckets", [1, 7, 500, 5000])
async def test_buckets_match_a_brute_force_computation(
    uow_factory, session_factory, tracked, buckets
):
    run_id = tracked.run_ids[0]
    points = generated(3000, seed=buckets)
    await store_points(session_factory, run_id, points)
    accuracy = generated(500, seed=99)  # another metric of the run: not mixed in
    await store_points(session_factory, run_id, accuracy, name="accuracy")
    got = await history(uow_factory, [run_id], buckets)
    assert_same(got.series[0].buckets, brute_force({run_id: points}, buckets)[run_id])
    assert len(got.series[0].buckets) <= buckets
    assert sum(b.points for b in got.series[0].buckets) == len(points)
    assert (got.first_step, got.last_step) == (min(points), max(points))


@pytest.mark.parametrize(
    ("points", "buckets"),
    [
        ({42: 1.5}, 500),  # one point
        ({0: 3.0, 1: -2.0, 9: 0.25, 10: 7.0, 11: -0.5}, 500),  # fewer points than buckets
        ({0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}, 3),  # a width that buckets do not divide
        ({s: float(s % 7) for s in (*range(0, 50), *range(10_000, 10_050))}, 20),  # a gap
        ({0: 1.0, INT32_MAX // 2: 2.0, INT32_MAX - 1: 3.0, INT32_MAX: 4.0}, 10_000),  # 64-bit
    ],
    ids=["one-point", "fewer-points-than-buckets", "uneven", "gap", "int32-steps"],
)
async def test_edge_cases_match_the_brute_force(
    uow_factory, session_factory, tracked, points, buckets
):
    run_id = tracked.run_ids[0]
    await store_points(session_factory, run_id, points)
    got = await history(uow_factory, [run_id], buckets)
    assert_same(got.series[0].buckets, brute_force({run_id: points}, buckets)[run_id])


async def test_runs_compared_share_their_buckets(uow_factory, session_factory, tracked):
    long_run, short_run, silent_run = tracked.run_ids
    runs = {long_run: generated(2000, seed=1), short_run: generated(300, seed=2, top=20_000)}
    for run_id, points in runs.items():
        await store_points(session_factory, run_id, points)
    got = await history(uow_factory, [short_run, long_run, silent_run], 50)
    expected = brute_force({**runs, silent_run: {}}, 50)
    assert [series.run_id for series in got.series] == [short_run, long_run, silent_run]
    for series in got.series:
        assert_same(series.buckets, expected[series.run_id])
    assert got.series[2].buckets == []


async def test_a_step_range_zooms_in(uow_factory, session_factory, tracked):
    run_id = tracked.run_ids[0]
    points = generated(3000, seed=5)
    await store_points(session_factory, run_id, points)
    got = await history(uow_factory, [run_id], 40, first_step=20_000, last_step=30_000)
    inside = {s: v for s, v in points.items() if 20_000 <= s <= 30_000}
    assert_same(got.series[0].buckets, brute_force({run_id: inside}, 40)[run_id])


async def test_no_points_is_an_empty_history_and_an_unknown_run_a_refusal(uow_factory, tracked):
    got = await history(uow_factory, tracked.run_ids[:1], 500)
    assert (got.series[0].buckets, got.first_step, got.last_step) == ([], None, None)
    with pytest.raises(RunNotFound, match="run 998, 999 not found"):
        await history(uow_factory, [tracked.run_ids[0], 999, 998], 500)


async def test_pages_walk_every_point_in_step_order(uow_factory, session_factory, tracked):
    run_id = tracked.run_ids[0]
    points = generated(103, seed=7)
    await store_points(session_factory, run_id, points)
    seen: list[tuple[int, float]] = []
    after, pages = -1, 0
    while after is not None:
        async with uow_factory() as uow:
            page = await services.metric_page(
                uow, MetricPageQuery(run_id=run_id, name="loss", after_step=after, limit=10)
            )
        seen += [(p.step, p.value) for p in page.points]
        after, pages = page.next_after, pages + 1
    assert seen == sorted(points.items())
    assert pages == 11  # ten full pages, then the last three points
    assert all(p.recorded_at.tzinfo is not None for p in page.points)


async def test_a_run_summary_describes_each_metric(uow_factory, session_factory, tracked):
    run_id, other_run, _ = tracked.run_ids
    loss, accuracy = generated(400, seed=3), generated(50, seed=4)
    await store_points(session_factory, run_id, loss)
    await store_points(session_factory, run_id, accuracy, name="accuracy")
    await store_points(session_factory, other_run, generated(10, seed=6))
    async with uow_factory() as uow:
        summary = await services.run_summary(uow, run_id)
    assert (summary.id, summary.points) == (run_id, 450)
    got = {m.name: m for m in summary.metrics}
    assert list(got) == ["accuracy", "loss"]
    for name, points in (("loss", loss), ("accuracy", accuracy)):
        last = max(points)
        assert got[name].model_dump() == {
            "name": name,
            "points": len(points),
            "first_step": min(points),
            "last_step": last,
            "last": points[last],
            "min": min(points.values()),
            "max": max(points.values()),
        }
    async with uow_factory() as uow:
        with pytest.raises(RunNotFound):
            await services.run_summary(uow, 999)


async def test_an_experiment_lists_its_runs_with_their_summaries(
    uow_factory, session_factory, tracked
):
    first, second, third = tracked.run_ids
    await store_points(session_factory, first, {0: 1.0, 5: 0.5})
    await store_points(session_factory, second, {3: 2.0})
    async with uow_factory() as uow:
        experiment = await services.experiment_runs(uow, tracked.experiment_id)
    assert experiment.id == tracked.experiment_id
    assert [(r.id, r.points) for r in experiment.runs] == [(first, 2), (second, 1), (third, 0)]
    assert [(m.name, m.last) for m in experiment.runs[0].metrics] == [("loss", 0.5)]
    assert experiment.runs[2].metrics == []
    async with uow_factory() as uow:
        with pytest.raises(ExperimentNotFound):
            await services.experiment_runs(uow, 999)


async def test_an_experiment_holds_its_newest_runs_and_counts_them_all(
    uow_factory, tracked, monkeypatch
):
    monkeypatch.setattr(tracker_services, "MAX_RUNS_LISTED", 2)
    async with uow_factory() as uow:
        detail = await services.get_experiment(uow, tracked.experiment_id)
        summarised = await services.experiment_runs(uow, tracked.experiment_id)
    newest = tracked.run_ids[1:]
    assert ([r.id for r in detail.runs], detail.run_count) == (newest, 3)
    assert ([r.id for r in summarised.runs], summarised.run_count) == (newest, 3)


async def test_summaries_hold_the_first_metrics_by_name_and_count_them_all(
    uow_factory, session_factory, tracked, monkeypatch
):
    first, second, third = tracked.run_ids
    for name in ("c", "a", "b"):
        await store_points(session_factory, first, {0: 1.0, 1: 2.0}, name=name)
    for name in ("b", "a"):
        await store_points(session_factory, second, {4: 3.0}, name=name)
    monkeypatch.setattr(metric_read_services, "MAX_METRICS_LISTED", 2)
    monkeypatch.setattr(metric_read_services, "MAX_SUMMARIES", 3)  # one each for three runs
    async with uow_factory() as uow:
        run = await services.run_summary(uow, first)
        experiment = await services.experiment_runs(uow, tracked.experiment_id)
    assert ([m.name for m in run.metrics], run.metric_count, run.points) == (["a", "b"], 3, 6)
    assert [([m.name for m in r.metrics], r.metric_count, r.points) for r in experiment.runs] == [
        (["a"], 3, 6),
        (["a"], 2, 2),
        ([], 0, 0),
    ]
    assert experiment.runs[2].id == third


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
async def test_the_table_refuses_values_no_aggregate_could_use(session_factory, tracked, value):
    """The schemas refuse NaN and the infinities; so does the table, whoever writes to it,
    so that min, max and mean are always numbers."""
    with pytest.raises(IntegrityError):
        await store_points(session_factory, tracked.run_ids[0], {1: value})
