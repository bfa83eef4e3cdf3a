"""The API's data: profiles (read; create and update through their jobs), experiments
with their runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from domain import schemas, services
from domain.views import ExperimentDetail, ExperimentSummary, ProfileView
from worker.registry import CREATE_PROFILE, UPDATE_PROFILE
from worker.web.api_jobs import IdempotencyKey, Wait
from worker.web.console import Console
from worker.web.enqueueing import enqueue
from worker.web.schemas import ERRORS, Enqueued
from worker.web.security import NEEDS_TOKEN

router = APIRouter(prefix="/api", tags=["data"], responses=ERRORS)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Prefix = Annotated[str | None, Query(min_length=1, max_length=254, pattern=r"^[^\x00]+$")]


@router.get("/profiles", summary="Profiles, newest first; prefixes match as typed")
async def list_profiles(
    console: Console, username: Prefix = None, email: Prefix = None, limit: Limit = 20
) -> list[ProfileView]:
    query = schemas.ListProfiles(username=username, email=email, limit=limit)
    return await console.read(services.list_profiles, query)


@router.get("/profiles/{profile_id}", summary="One profile")
async def get_profile(console: Console, profile_id: Id) -> ProfileView:
    return await console.read(services.get_profile, profile_id)


@router.post(
    "/profiles",
    dependencies=NEEDS_TOKEN,
    status_code=202,
    summary="Create a profile (enqueues create_profile)",
)
async def create_profile(
    console: Console,
    response: Response,
    profile: Annotated[dict[str, Any], Body()],
    wait: Wait = 0,
    idempotency_key: IdempotencyKey = None,
) -> Enqueued:
    enqueued, response.status_code = await enqueue(
        console, CREATE_PROFILE, profile, key=idempotency_key, wait=wait
    )
    return enqueued


@router.patch(
    "/profiles/{profile_id}",
    dependencies=NEEDS_TOKEN,
    status_code=202,
    summary="Change fields of a profile (enqueues update_profile)",
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


@router.get("/experiments", summary="Experiments with their run counts, newest first")
async def list_experiments(
    console: Console,
    owner_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    status: Annotated[schemas.ExperimentStatus | None, Query()] = None,
    limit: Limit = 100,
) -> list[ExperimentSummary]:
    query = schemas.ListExperiments(owner_id=owner_id, status=status, limit=limit)
    return await console.read(services.list_experiments, query)


@router.get("/experiments/{experiment_id}", summary="One experiment with its runs")
async def get_experiment(console: Console, experiment_id: Id) -> ExperimentDetail:
    return await console.read(services.get_experiment, experiment_id)
