"""The queue and its workers: over the API, on the dashboard (the overview and the workers,
each a page and the fragment of it that htmx reads again every few seconds), and for
Prometheus (``/metrics``). What waits and runs, which workers are alive and what no worker
could serve come from one read of the queue (``worker.ops.queue_state``); what ended
lately, from the job history's finished_at index."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from domain import services
from worker.bootstrap import Services
from worker.ops.queue_prometheus import CONTENT_TYPE, read_exposition
from worker.ops.queue_state import MIN_HEAD_DEPTH, QueueHead, read_queue
from worker.ops.workers import Roster, WorkerBeat, read_roster
from worker.web.console import Console
from worker.web.schemas import ERRORS, QuarantinedOut, QueueOverview, RunningJobOut, WorkerOut
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
    return QueueOverview(
        total=queue.total,
        ready=queue.due,
        deferred=queue.deferred,
        waiting_by_function=head.by_function,
        sampled=head.sampled,
        unreadable=head.unreadable,
        quarantined=queue.quarantined,
        quarantine=[QuarantinedOut(**asdict(record)) for record in head.quarantine],
        running=_running(head),
        workers=_workers(queue.workers),
        last_minute=last_minute,
        last_hour=last_hour,
        jobs_per_second=round(sum(last_minute.values()) / MINUTE, 2),
    )


async def workers(console: Services) -> list[WorkerOut]:
    return _workers(await read_roster(await console.queue(), console.settings.queue_name))


def _workers(roster: Roster) -> list[WorkerOut]:
    # The live ones only, as ever; `dbjobs health` lists the silent ones too (issue 20).
    now = datetime.now(UTC)
    return [_worker(beat, now) for beat in roster.live]


def _worker(beat: WorkerBeat, now: datetime) -> WorkerOut:
    since = round((now - beat.beat_at).total_seconds(), 1)
    return WorkerOut(**asdict(beat), seconds_since_beat=since)


def _running(head: QueueHead) -> list[RunningJobOut]:
    now = datetime.now(UTC)
    return [RunningJobOut(**asdict(job), age_seconds=job.age_seconds(now)) for job in head.running]


@api.get("/queue", summary="Depth, running jobs, workers, and throughput lately")
async def get_queue(console: Console) -> QueueOverview:
    return await overview(console)


@api.get("/workers", summary="Workers alive, with their last heartbeat")
async def get_workers(console: Console) -> list[WorkerOut]:
    return await workers(console)


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


_live("/", "overview", overview)
_live("/workers", "workers", workers)
