"""The dashboard's pages that read metric points, on the heavy-read budget: an experiment
with its runs' summaries, and a run's page: the run, its metrics' summaries, and a chart
per metric that reads the history API (downsampled on the server, a finer range asked
for on zoom), with other runs of the experiment overlaid on demand (``?compare=``, or the
checkboxes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from domain import services
from domain.metric_queries import DEFAULT_BUCKETS, MAX_COMPARED_RUNS, MAX_HISTORY_BUCKETS
from worker.web.budget import HeavyRoute
from worker.web.console import Console
from worker.web.templating import render

router = APIRouter(include_in_schema=False, route_class=HeavyRoute)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Compared = Annotated[
    list[Annotated[int, Query(ge=1, le=2**63 - 1)]] | None,
    Query(max_length=MAX_COMPARED_RUNS - 1),
]


@router.get("/experiments/{experiment_id}")
async def experiment_page(request: Request, console: Console, experiment_id: Id) -> Response:
    experiment = await console.read(services.experiment_runs, experiment_id)
    return render(request, "experiment.html", {"experiment": experiment})


@router.get("/runs/{run_id}")
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
