"""The data, over the API and on the dashboard: profiles (read; created and changed through
their jobs) and experiments with their run counts. What reads metric points (an
experiment's runs with their summaries, a run's chart) is in ``metric_routes``."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from fastapi import APIRouter, Body, Query, Request, Response

from domain import schemas, services
from domain.views import ExperimentDetail, ExperimentSummary, ProfileView
from worker.registry import CREATE_PROFILE, UPDATE_PROFILE
from worker.web.console import Console
from worker.web.enqueueing import WAITED, IdempotencyKey, Wait, add_enqueue_route, enqueue
from worker.web.params import ExperimentState, Id, Limit, OwnerId
from worker.web.schemas import ERRORS, NO_NUL, Enqueued
from worker.web.security import NEEDS_TOKEN
from worker.web.strict_query import STRICT
from worker.web.templating import render

api = APIRouter(prefix="/api", tags=["data"], responses=ERRORS, dependencies=STRICT)
pages = APIRouter(include_in_schema=False)
PAGE = 100
Prefix = Annotated[str | None, Query(min_length=1, max_length=254, pattern=NO_NUL)]


@api.get("/profiles", summary="Profiles, newest first; prefixes match as typed")
async def list_profiles(
    console: Console, username: Prefix = None, email: Prefix = None, limit: Limit = 20
) -> list[ProfileView]:
    query = schemas.ListProfiles(username=username, email=email, limit=limit)
    return await console.read(services.list_profiles, query)


add_enqueue_route(
    api,
    "/profiles",
    CREATE_PROFILE,
    name=CREATE_PROFILE.name,
    summary="Create a profile (enqueues create_profile)",
)


@api.get("/profiles/{profile_id}", summary="One profile")
async def get_profile(console: Console, profile_id: Id) -> ProfileView:
    return await console.read(services.get_profile, profile_id)


@api.patch(
    "/profiles/{profile_id}",
    dependencies=NEEDS_TOKEN,
    status_code=202,
    summary="Change fields of a profile (enqueues update_profile)",
    responses=WAITED,
)
async def update_profile(
    console: Console,
    response: Response,
    profile_id: Id,
    changes: Annotated[dict[str, Any], Body(description="The fields to change")],
    expected_version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    wait: Wait = 0,
    idempotency_key: IdempotencyKey = None,
) -> Enqueued:
    raw: dict[str, Any] = {"profile_id": profile_id, "changes": changes}
    if expected_version is not None:
        raw["expected_version"] = expected_version
    enqueued, response.status_code = await enqueue(
        console, UPDATE_PROFILE, raw, key=idempotency_key, wait=wait
    )
    return enqueued


@api.get("/experiments", summary="Experiments with their run counts, newest first")
async def list_experiments(
    console: Console, owner_id: OwnerId = None, state: ExperimentState = None, limit: Limit = 100
) -> list[ExperimentSummary]:
    query = schemas.ListExperiments(owner_id=owner_id, state=state, limit=limit)
    return await console.read(services.list_experiments, query)


@api.get("/experiments/{experiment_id}", summary="One experiment with its runs")
async def get_experiment(console: Console, experiment_id: Id) -> ExperimentDetail:
    return await console.read(services.get_experiment, experiment_id)


@pages.get("/experiments")
async def experiments_page(
    request: Request, console: Console, owner_id: OwnerId = None, state: ExperimentState = None
) -> Response:
    query = schemas.ListExperiments(owner_id=owner_id, state=state, limit=PAGE)
    context = {
        "experiments": await console.read(services.list_experiments, query),
        "owner_id": owner_id or "",
        "state": state or "",
        "states": get_args(schemas.ExperimentStatus),
        "limit": PAGE,
    }
    return render(request, "experiments.html", context)


@pages.get("/profiles/{profile_id}")
async def profile_page(request: Request, console: Console, profile_id: Id) -> Response:
    profile = await console.read(services.get_profile, profile_id)
    return render(request, "profile.html", {"profile": profile})
