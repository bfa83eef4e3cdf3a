"""Enqueueing from the API: the CLI's checks (``worker.ops.actions``), then the answer, with
the outcome when the caller waits for it (``worker.ops.following``); and the route that
enqueues a job of the registry, which every such job has (``/api/enqueue/<job>``) and some
have under a name of their own (``POST /api/profiles``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, Query, Response
from pydantic import ValidationError

from worker.bootstrap import Services
from worker.lanes import Lane
from worker.ops.actions import checked_payload, enqueue_once, enqueued_outcome, job_id_problem
from worker.ops.following import outcome_within
from worker.registry import Job
from worker.web.console import Console
from worker.web.errors import PayloadRefused
from worker.web.schemas import Enqueued
from worker.web.security import NEEDS_TOKEN

MAX_WAIT_SECONDS = 60.0
Wait = Annotated[
    float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the outcome")
]
LaneQuery = Annotated[
    Lane | None,
    Query(
        description="The lane the job waits in (default: its job's): interactive work "
        "is claimed before maintenance, maintenance before bulk"
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(description="The job id: a repeat of the same request enqueues nothing new"),
]
WAITED: dict[int | str, dict[str, Any]] = {
    200: {"model": Enqueued, "description": "Waited: the job has ended"}
}


def job_id_from(key: str | None) -> str:
    """The caller's idempotency key as the job id, or a new one."""
    if key is None:
        return uuid.uuid4().hex
    problem = job_id_problem(key)
    if problem is not None:
        raise HTTPException(422, f"Idempotency-Key: {problem}")
    return key


async def enqueue(
    console: Services,
    job: Job[Any],
    raw: Mapping[str, Any],
    *,
    key: str | None,
    wait: float,
    lane: Lane | None = None,
) -> tuple[Enqueued, int]:
    """Enqueue ``raw`` as ``job`` once per key; the answer and its HTTP status (200 when the
    job has ended, 202 while it waits or runs). Nothing is enqueued for a bad payload."""
    job_id = job_id_from(key)
    try:
        payload = checked_payload(job, raw, console.settings, job_id)
    except ValidationError as problem:
        raise PayloadRefused(problem) from None
    new = await enqueue_once(console, job.name, payload, job_id, lane=lane)
    return await answer(console, job_id, job.name, new=new, wait=wait)


async def answer(
    console: Services, job_id: str, function: str, *, new: bool, wait: float
) -> tuple[Enqueued, int]:
    if wait > 0:
        outcome = await outcome_within(console, job_id, wait)
    else:
        outcome = await enqueued_outcome(console, job_id, function, new=new)
    return Enqueued(job=outcome, deduplicated=not new), 200 if outcome.done else 202


def add_enqueue_route(
    router: APIRouter, path: str, job: Job[Any], *, name: str, summary: str
) -> None:
    """``POST path``: the body is a payload of ``job``, enqueued once per Idempotency-Key."""

    async def enqueue_job(
        console: Console,
        response: Response,
        payload: Annotated[dict[str, Any], Body()],
        wait: Wait = 0,
        lane: LaneQuery = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Enqueued:
        enqueued, response.status_code = await enqueue(
            console, job, payload, key=idempotency_key, wait=wait, lane=lane
        )
        return enqueued

    router.add_api_route(
        path,
        enqueue_job,
        methods=["POST"],
        status_code=202,
        dependencies=NEEDS_TOKEN,
        name=name,
        summary=summary,
        responses=WAITED,
    )
