"""The queue and its workers: over the API, on the dashboard (the overview and the workers,
each a page and the fragment of it that htmx reads again every few seconds), and for
Prometheus (``/metrics``). What waits and runs, which workers are alive and what no worker
could serve come from one read of the queue (``worker.ops.queue_state``); what ended
lately, from the job history's finished_at index."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from domain import services
from domain.errors import GenerationNotFound
from domain.uow import UnitOfWork
from worker.bootstrap import Services
from worker.ops.queue_prometheus import CONTENT_TYPE, read_exposition
from worker.ops.queue_state import (
    MAX_RUNNING_LOOKED_AT,
    MIN_HEAD_DEPTH,
    QueueHead,
    QueueState,
    read_queue,
)
from worker.ops.workers import LATE, LOST, WorkerRow, dismiss_lost
from worker.web.console import Console
from worker.web.params import FormWorkerId
from worker.web.schemas import (
    ERRORS,
    Dismissed,
    DismissRequest,
    GenerationOut,
    QuarantinedOut,
    QueueOverview,
    RunningJobOut,
    SubmissionOut,
    WorkerOut,
)
from worker.web.security import NEEDS_TOKEN, checked_form
from worker.web.strict_query import STRICT
from worker.web.templating import render

api = APIRouter(prefix="/api", tags=["queue"], responses=ERRORS, dependencies=STRICT)
pages = APIRouter(include_in_schema=False)
# Prometheus scrapes the queue here; each worker serves its own counters on its own port.
prometheus = APIRouter(include_in_schema=False)
MINUTE = 60
HOUR = 3600


async def overview(console: Services) -> QueueOverview:
    redis, queue_name = await console.queue(), console.settings.queue_name
    queue = await read_queue(redis, queue_name, head=MIN_HEAD_DEPTH)
    head = queue.head
    assert head is not None  # asked for
    async with console.unit_of_work() as uow:
        last_minute = await services.recent_counts(uow, MINUTE)
        last_hour = await services.recent_counts(uow, HOUR)
        unhandled = await services.recent_unhandled_failures(uow, HOUR)
        generations = [await _generation(uow, g) for g in head.generations]
    workers = _worker_rows(queue, queue_name)
    running = _running(head, workers)
    return QueueOverview(
        total=queue.total,
        ready=queue.due,
        waiting=max(0, queue.due - len(running)),
        deferred=queue.deferred,
        waiting_by_function=head.by_function,
        sampled=head.sampled,
        unreadable=head.unreadable,
        quarantined=queue.quarantined,
        quarantine=[QuarantinedOut(**asdict(record)) for record in head.quarantine],
        running=running,
        workers=workers,
        submissions=[
            SubmissionOut(**asdict(progress), done=progress.done) for progress in head.submissions
        ],
        generations=[generation for generation in generations if generation is not None],
        last_minute=last_minute,
        last_hour=last_hour,
        unhandled_failures_last_hour=unhandled,
        jobs_per_second=round(sum(last_minute.values()) / MINUTE, 2),
    )


async def _generation(uow: UnitOfWork, generation_id: int) -> GenerationOut | None:
    try:
        status = await services.generation_status(uow, generation_id)
    except GenerationNotFound:  # chunks of a reset database's generation, still queued
        return None
    return GenerationOut(**status.model_dump())


async def workers(console: Services) -> list[WorkerOut]:
    queue_name = console.settings.queue_name
    queue = await read_queue(await console.queue(), queue_name, head=MIN_HEAD_DEPTH)
    return _worker_rows(queue, queue_name)


def _worker_rows(queue: QueueState, queue_name: str) -> list[WorkerOut]:
    """The workers, each counting the running jobs the queue's head holds under its lease
    (a beat's own count lags, and counts jobs it claimed but has not leased yet): the
    overview's Running table, its worker rows and the Workers page tell one number."""
    assert queue.head is not None  # read with the head
    running = Counter(job.worker for job in queue.head.running if job.worker is not None)
    return [_worker(row, queue_name) for row in queue.workers.rows(running=running)]


def _worker(row: WorkerRow, queue_name: str) -> WorkerOut:
    return WorkerOut(**asdict(row), queue_name=queue_name)


def _running(head: QueueHead, workers: list[WorkerOut]) -> list[RunningJobOut]:
    now = datetime.now(UTC)
    healthy = {worker.worker_id for worker in workers if worker.state not in (LATE, LOST)}
    return [
        RunningJobOut(
            **asdict(job),
            age_seconds=job.age_seconds(now),
            orphaned=job.worker is not None and job.worker not in healthy,
        )
        for job in head.running
    ]


@api.get("/queue", summary="Depth, running jobs, workers, and throughput lately")
async def get_queue(console: Console) -> QueueOverview:
    return await overview(console)


@api.get("/workers", summary="The workers: alive, late or lost, with their last heartbeat")
async def get_workers(console: Console) -> list[WorkerOut]:
    return await workers(console)


@api.post(
    "/workers/dismiss",
    dependencies=NEEDS_TOKEN,
    summary="Forget a lost worker (one still beating is not dismissed)",
)
async def dismiss_worker(console: Console, request: DismissRequest) -> Dismissed:
    queue_name = console.settings.queue_name
    dismissed = await dismiss_lost(await console.queue(), queue_name, request.worker_id)
    return Dismissed(worker_id=request.worker_id, dismissed=dismissed)


@pages.post("/workers/dismiss", dependencies=[Depends(checked_form)])
async def dismiss_form(console: Console, worker_id: FormWorkerId) -> Response:
    await dismiss_lost(await console.queue(), console.settings.queue_name, worker_id)
    return RedirectResponse("/workers", 303)


@prometheus.get("/metrics")
async def get_gauges(console: Console) -> Response:
    """The queue's gauges (worker.ops.queue_prometheus), in Prometheus's text format."""
    body = await read_exposition(await console.queue(), console.settings.queue_name)
    return Response(body, media_type=CONTENT_TYPE)


def _live(path: str, name: str, read: Callable[[Services], Awaitable[Any]]) -> None:
    """The page ``name.html`` at ``path``, and its fragment ``_name.html`` that the page
    reads again every few seconds, at ``/fragments/name``; ``name`` is what ``read`` read."""

    async def page(request: Request, console: Console) -> Response:
        return render(request, f"{name}.html", {name: await read(console)})

    async def fragment(request: Request, console: Console) -> Response:
        return render(request, f"_{name}.html", {name: await read(console)})

    pages.add_api_route(path, page, methods=["GET"], name=f"{name}_page")
    pages.add_api_route(f"/fragments/{name}", fragment, methods=["GET"], name=f"{name}_fragment")


# The overview's Running table shows a page of this many rows (100 running jobs pushed the
# workers 3,500 px down); the rest are a link away.
RUNNING_SHOWN = 20
RunningFrom = Annotated[int, Query(ge=0, le=MAX_RUNNING_LOOKED_AT, description="First row")]


async def _overview_context(console: Services, running_from: int) -> dict[str, Any]:
    return {
        "overview": await overview(console),
        "running_from": running_from,
        "running_shown": RUNNING_SHOWN,
    }


@pages.get("/", name="overview_page")
async def overview_page(
    request: Request, console: Console, running_from: RunningFrom = 0
) -> Response:
    return render(request, "overview.html", await _overview_context(console, running_from))


@pages.get("/fragments/overview", name="overview_fragment")
async def overview_fragment(
    request: Request, console: Console, running_from: RunningFrom = 0
) -> Response:
    return render(request, "_overview.html", await _overview_context(console, running_from))


_live("/workers", "workers", workers)
