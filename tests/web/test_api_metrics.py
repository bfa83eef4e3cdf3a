"""The metric reads over HTTP, on the suite's PostgreSQL: each answer is the domain use
case's, number for number, and the numbers are the points stored."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from domain import services
from domain.metric_queries import MetricHistoryQuery
from tests.support.db import MakeUow, add_experiment, add_profile, add_run
from tests.support.rows import store_points

HOSTILE = "<script>alert('x')</script> & loss"


@dataclass(frozen=True)
class Seeded:
    experiment_id: int
    runs: list[int]
    loss: dict[int, dict[int, float]]  # run -> step -> value


def curve(steps: range, shift: float) -> dict[int, float]:
    return {s: math.exp(-s / 400) + shift + 0.05 * math.sin(s) for s in steps}


@pytest.fixture
async def seeded(uow_factory: MakeUow, session_factory) -> Seeded:
    owner = await add_profile(uow_factory)
    experiment = await add_experiment(uow_factory, owner.id)
    runs = [(await add_run(uow_factory, experiment.id)).id for _ in range(3)]
    loss = {runs[0]: curve(range(0, 1000), 0.0), runs[1]: curve(range(0, 1500, 3), 0.1)}
    for run_id, points in loss.items():
        await store_points(session_factory, run_id, points, "loss")
    await store_points(session_factory, runs[0], {0: 1.0, 10: -2.5, 20: 3.0}, HOSTILE)
    return Seeded(experiment.id, runs, loss)


async def test_a_runs_summary_is_the_use_cases(api, uow_factory, seeded):
    run_id = seeded.runs[0]
    answer = (await api.get(f"/api/runs/{run_id}")).json()
    async with uow_factory() as uow:
        expected = await services.run_summary(uow, run_id)
    assert answer == expected.model_dump(mode="json")
    metrics = {m["name"]: m for m in answer["metrics"]}
    assert metrics[HOSTILE] | {"name": None} == {
        "name": None,
        "points": 3,
        "first_step": 0,
        "last_step": 20,
        "last": 3.0,
        "min": -2.5,
        "max": 3.0,
    }
    assert answer["points"] == 1003
    unknown = await api.get("/api/runs/999999")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found"


async def test_an_experiments_runs_come_with_their_summaries(api, uow_factory, seeded):
    answer = (await api.get(f"/api/experiments/{seeded.experiment_id}/runs")).json()
    async with uow_factory() as uow:
        expected = await services.experiment_runs(uow, seeded.experiment_id)
    assert answer == expected.model_dump(mode="json")
    assert [r["points"] for r in answer["runs"]] == [1003, 500, 0]
    assert (await api.get("/api/experiments/424242/runs")).status_code == 404


async def test_history_of_several_runs_is_the_use_cases_and_adds_up(api, uow_factory, seeded):
    first, second, _ = seeded.runs
    params = {"name": "loss", "run_ids": [first, second], "buckets": 40}
    answer = (await api.get("/api/metrics/history", params=params)).json()
    async with uow_factory() as uow:
        query = MetricHistoryQuery(run_ids=[first, second], name="loss", buckets=40)
        expected = await services.metric_history(uow, query)
    assert answer == expected.model_dump(mode="json")
    assert (answer["first_step"], answer["last_step"], answer["buckets"]) == (0, 1497, 40)
    for series in answer["series"]:
        points = seeded.loss[series["run_id"]]
        assert sum(b["points"] for b in series["buckets"]) == len(points)
        assert min(b["min"] for b in series["buckets"]) == min(points.values())
        assert series["buckets"][-1]["last"] == points[max(points)]


async def test_a_step_range_zooms_in(api, seeded):
    params = {"name": "loss", "run_ids": seeded.runs[0], "buckets": 500}
    zoomed = await api.get(
        "/api/metrics/history", params=params | {"first_step": 100, "last_step": 149}
    )
    answer = zoomed.json()
    assert (answer["first_step"], answer["last_step"]) == (100, 149)
    buckets = answer["series"][0]["buckets"]
    points = seeded.loss[seeded.runs[0]]
    assert [(b["first_step"], b["points"], b["last"]) for b in buckets] == [
        (step, 1, points[step]) for step in range(100, 150)
    ]
    empty = await api.get("/api/metrics/history", params=params | {"first_step": 5000})
    assert empty.json()["first_step"] is None
    assert empty.json()["series"] == [{"run_id": seeded.runs[0], "buckets": []}]


async def test_raw_points_are_paged_by_keyset(api, uow_factory, seeded):
    run_id = seeded.runs[1]
    seen: list[tuple[int, float]] = []
    after, pages = -1, 0
    while after is not None:
        params = {"name": "loss", "after_step": after, "limit": 200}
        page = (await api.get(f"/api/runs/{run_id}/points", params=params)).json()
        seen += [(p["step"], p["value"]) for p in page["points"]]
        after, pages = page["next_after"], pages + 1
    assert seen == sorted(seeded.loss[run_id].items())
    assert pages == 3


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"name": "loss", "run_ids": [1], "buckets": 0}, "buckets"),
        ({"name": "loss"}, "run_ids"),
        ({"run_ids": [1]}, "name"),
        ({"name": "   ", "run_ids": [1]}, "name"),
        ({"name": "loss", "run_ids": [0]}, "run_ids.0"),
        ({"name": "loss", "run_ids": [1, 1]}, "a run is named twice"),
        ({"name": "loss", "run_ids": [1], "first_step": 9, "last_step": 3}, "first_step"),
        ({"name": "loss", "run_ids": [1], "last_step": -1}, "last_step"),
    ],
)
async def test_bad_history_input_names_the_field(api, params, named):
    response = await api.get("/api/metrics/history", params=params)
    assert response.status_code == 422
    assert named in " | ".join(response.json()["error"]["problems"])


async def test_bad_paging_input_names_the_field(api, seeded):
    run = seeded.runs[0]
    for params, named in (
        ({"name": "loss", "after_step": -2}, "after_step"),
        ({"name": "loss", "limit": 25_001}, "limit"),
        ({}, "name"),
    ):
        response = await api.get(f"/api/runs/{run}/points", params=params)
        assert response.status_code == 422
        assert named in " | ".join(response.json()["error"]["problems"])
    assert (await api.get("/api/runs/77777/points", params={"name": "loss"})).status_code == 404


async def test_the_run_page_shows_names_literally_and_refuses_strangers(api, seeded):
    first, second, third = seeded.runs
    page = await api.get(f"/runs/{first}", params={"compare": [second]})
    assert page.status_code == 200
    assert "<script>alert(" not in page.text
    assert "&lt;script&gt;alert(" in page.text
    assert f'value="{second}" checked' in page.text
    experiment = (await api.get(f"/experiments/{seeded.experiment_id}")).text
    assert f'href="/runs/{third}"' in experiment
    stranger = await api.get(f"/runs/{first}", params={"compare": [first]})
    assert stranger.status_code == 422
    assert "compare" in stranger.text
    assert (await api.get("/runs/31337")).status_code == 404
