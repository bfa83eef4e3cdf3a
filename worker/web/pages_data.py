"""The dashboard's data pages: experiments with their run counts, and a profile. The pages
that read metric points (an experiment with its runs' summaries, a run with its charts)
are in ``pages_metrics``."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Path, Query, Request, Response

from domain import schemas, services
from worker.web.console import Console
from worker.web.templating import render

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE = 100


@router.get("/experiments")
async def experiments_page(
    request: Request,
    console: Console,
    owner_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    status: Annotated[schemas.ExperimentStatus | None, Query()] = None,
) -> Response:
    query = schemas.ListExperiments(owner_id=owner_id, status=status, limit=PAGE)
    experiments = await console.read(services.list_experiments, query)
    context = {
        "experiments": experiments,
        "owner_id": owner_id or "",
        "status": status or "",
        "states": get_args(schemas.ExperimentStatus),
        "limit": PAGE,
    }
    return render(request, "experiments.html", context)


@router.get("/profiles/{profile_id}")
async def profile_page(request: Request, console: Console, profile_id: Id) -> Response:
    profile = await console.read(services.get_profile, profile_id)
    return render(request, "profile.html", {"profile": profile})
