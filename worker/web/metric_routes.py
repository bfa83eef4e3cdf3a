"""The runs' metrics, over the API and on the dashboard: a run's summary, an experiment's
runs with theirs, and a metric's history for one or several runs, downsampled in SQL or
paged raw by keyset; the experiment's page, and a run's page with a chart per metric that
reads the history API (downsampled on the server, a finer range asked for on zoom), other
runs of the experiment overlaid on demand (``?compare=``, or the checkboxes).

The parameters carry the domain's limits, so that the OpenAPI schema states them; the
domain's query models then check what crosses fields (a run named twice, a reversed
range, run_ids × buckets). Each route here reads as much as the runs hold, so each runs
on the console's heavy-read budget (``worker.web.budget``)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ValidationError

from domain import services
from domain.metric_queries import (
    DEFAULT_BUCKETS,
    DEFAULT_PAGE,
    MAX_BUCKETS,
    MAX_COMPARED_RUNS,
    MAX_HISTORY_BUCKETS,
    MAX_PAGE,
    MetricHistoryQuery,
    MetricPageQuery,
)
from domain.schemas import INT32_MAX
from domain.views import ExperimentRuns, MetricHistory, MetricPage, RunSummary
from worker.web.budget import HeavyRoute
from worker.web.console import Console
from worker.web.errors import PayloadRefused
from worker.web.params import ID_MAX, Id
from worker.web.schemas import ERRORS, NO_NUL
from worker.web.strict_query import STRICT
from worker.web.templating import render

api = APIRouter(
    prefix="/api", tags=["metrics"], responses=ERRORS, dependencies=STRICT, route_class=HeavyRoute
)
pages = APIRouter(include_in_schema=False, route_class=HeavyRoute)
RunId = Annotated[int, Query(ge=1, le=ID_MAX)]
Name = Annotated[
    str,
    Query(min_length=1, max_length=200, pattern=NO_NUL, description="The metric"),
]
Step = Annotated[int | None, Query(ge=0, le=INT32_MAX)]
Compared = Annotated[list[RunId] | None, Query(max_length=MAX_COMPARED_RUNS - 1)]
M = TypeVar("M", bound=BaseModel)


@api.get("/runs/{run_id}", summary="A run with each metric's points, steps and values")
async def get_run(console: Console, run_id: Id) -> RunSummary:
    return await console.read(services.run_summary, run_id)


@api.get(
    "/experiments/{experiment_id}/runs",
    summary="An experiment with its runs, each with its metrics' summaries",
)
async def get_experiment_runs(console: Console, experiment_id: Id) -> ExperimentRuns:
    return await console.read(services.experiment_runs, experiment_id)


@api.get(
    "/metrics/history",
    summary="A metric of one or several runs, downsampled to buckets over its steps",
    description="The step range (the runs' first to last point, within first_step and "
    "last_step when given) is cut into `buckets` equal spans, the same for every run; "
    "each bucket has its points' count, min, max, mean and last value. Ask again with a "
    "narrower range to zoom in.",
)
async def metric_history(
    console: Console,
    name: Name,
    run_ids: Annotated[
        list[RunId],
        Query(min_length=1, max_length=MAX_COMPARED_RUNS, description="Repeat to compare"),
    ],
    buckets: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_BUCKETS,
            description=f"Default {DEFAULT_BUCKETS}, fewer for many runs: run_ids × buckets "
            f"is at most {MAX_HISTORY_BUCKETS:,}",
        ),
    ] = None,
    first_step: Step = None,
    last_step: Step = None,
) -> MetricHistory:
    raw = {"run_ids": run_ids, "name": name, "buckets": buckets}
    query = _checked(MetricHistoryQuery, raw | {"first_step": first_step, "last_step": last_step})
    return await console.read(services.metric_history, query)


@api.get(
    "/runs/{run_id}/points",
    summary="A run's points of a metric in step order, a page at a time",
    description="Give the page's `next_after` as `after_step` for the next page; "
    "it is null on the last one.",
)
async def metric_points(
    console: Console,
    run_id: Id,
    name: Name,
    after_step: Annotated[int, Query(ge=-1, le=INT32_MAX)] = -1,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> MetricPage:
    raw = {"run_id": run_id, "name": name, "after_step": after_step, "limit": limit}
    query = _checked(MetricPageQuery, raw)
    return await console.read(services.metric_page, query)


def _checked(model: type[M], raw: dict[str, Any]) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as problem:
        raise PayloadRefused(problem) from None


@pages.get("/experiments/{experiment_id}")
async def experiment_page(request: Request, console: Console, experiment_id: Id) -> Response:
    experiment = await console.read(services.experiment_runs, experiment_id)
    return render(request, "experiment.html", {"experiment": experiment})


@pages.get("/runs/{run_id}")
async def run_page(
    request: Request, console: Console, run_id: Id, compare: Compared = None
) -> Response:
    async with console.unit_of_work() as uow:
        run = await services.run_summary(uow, run_id)
        experiment = await services.get_experiment(uow, run.experiment_id)
    others = [other for other in experiment.runs if other.id != run_id]
    chosen = list(dict.fromkeys(compare or []))
    strangers = sorted(set(chosen) - {other.id for other in others})
    if strangers:
        told = ", ".join(map(str, strangers))
        raise HTTPException(422, f"compare: not another run of experiment {experiment.id}: {told}")
    chart = {
        "run_id": run_id,
        "compare": chosen,
        "max_buckets": DEFAULT_BUCKETS,
        "max_total": MAX_HISTORY_BUCKETS,
    }
    context = {"run": run, "experiment": experiment, "others": others, "chart": chart}
    return render(request, "run.html", context)
