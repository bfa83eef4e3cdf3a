"""The queue's lanes on the console: each lane's jobs, pause and resume of a lane or a job
kind, caps (``worker.ops.controls``), over the API and as the overview's queue controls;
and the flow of finished jobs per minute by lane and outcome, from the job history's
(finished_at, function, status) index, which the overview draws with uPlot."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from domain import services
from worker.bootstrap import Services
from worker.lanes import LANES, Lane
from worker.ops import controls
from worker.ops.queue_state import read_queue
from worker.registry import JOBS, lane_of
from worker.web.console import Console
from worker.web.schemas import ERRORS
from worker.web.security import NEEDS_TOKEN, checked_form
from worker.web.strict_query import STRICT
from worker.web.templating import render

api = APIRouter(prefix="/api", tags=["queue"], responses=ERRORS, dependencies=STRICT)
pages = APIRouter(include_in_schema=False)
Posted = [Depends(checked_form)]
# The flow chart's windows: (seconds shown, seconds per bucket).
WINDOWS = {"hour": (3600, 60), "day": (86_400, 600)}
TargetText = Annotated[str, Field(min_length=1, max_length=100)]
FormTarget = Annotated[str, Form(min_length=1, max_length=100)]


class LaneOut(BaseModel):
    lane: Lane
    due: int = Field(description="Ready or running")
    deferred: int = Field(description="Retries backing off, jobs enqueued with a delay")
    paused: bool


class KindOut(BaseModel):
    job: str
    lane: Lane
    paused: bool
    limit: int | None = Field(description="At most this many running at once; null: no cap")


class LanesOut(BaseModel):
    lanes: list[LaneOut]
    jobs: list[KindOut]


class ControlRequest(BaseModel):
    target: TargetText = Field(description="A lane, or a job by name or command")


class LimitRequest(BaseModel):
    limit: int | None = Field(ge=0, le=controls.MAX_LIMIT, description="null: the registry's")


class FlowSeries(BaseModel):
    lane: Lane
    state: str
    jobs: list[float] = Field(description="Jobs finished in each bucket, per minute")


class FlowOut(BaseModel):
    window: Literal["hour", "day"]
    bucket_seconds: int
    starts: list[int] = Field(description="Each bucket's start, seconds since the epoch")
    series: list[FlowSeries]


async def lanes(console: Services) -> LanesOut:
    redis, queue_name = await console.queue(), console.settings.queue_name
    queue = await read_queue(redis, queue_name)
    found = await controls.read_controls(redis, queue_name)
    return LanesOut(
        lanes=[
            LaneOut(
                lane=lane.lane,
                due=lane.due,
                deferred=lane.deferred,
                paused=f"lane:{lane.lane}" in found.paused,
            )
            for lane in queue.lanes
        ],
        jobs=[
            KindOut(
                job=job.name,
                lane=job.lane,
                paused=f"job:{job.name}" in found.paused,
                limit=found.limits.get(job.name),
            )
            for job in JOBS.values()
        ],
    )


async def flow(console: Services, window: Literal["hour", "day"]) -> FlowOut:
    seconds, bucket = WINDOWS[window]
    async with console.unit_of_work() as uow:
        counts = await services.job_flow(uow, seconds, bucket)
    last_start = max([count.start for count in counts], default=0)
    now_bucket = max(last_start, _now_bucket(bucket))
    starts = list(range(now_bucket - seconds + bucket, now_bucket + bucket, bucket))
    index = {start: at for at, start in enumerate(starts)}
    per_minute = bucket / 60
    table: dict[tuple[Lane, str], list[int]] = {}
    for count in counts:
        if count.start not in index:
            continue
        row = table.setdefault((lane_of(count.function), count.state), [0] * len(starts))
        row[index[count.start]] += count.jobs
    series = [
        FlowSeries(lane=lane, state=state, jobs=[round(n / per_minute, 2) for n in row])
        for (lane, state), row in sorted(table.items(), key=lambda item: _order(*item[0]))
    ]
    return FlowOut(window=window, bucket_seconds=bucket, starts=starts, series=series)


def _now_bucket(bucket: int) -> int:
    import time

    return int(time.time()) // bucket * bucket


def _order(lane: Lane, state: str) -> tuple[int, str]:
    return LANES.index(lane), state


@api.get("/lanes", summary="Each lane's jobs, and each job's lane, pause and cap")
async def get_lanes(console: Console) -> LanesOut:
    return await lanes(console)


@api.post("/lanes/pause", dependencies=NEEDS_TOKEN, summary="Pause a lane or a job kind")
async def pause(console: Console, request: ControlRequest) -> LanesOut:
    target = controls.target_of(request.target)
    await controls.pause(await console.queue(), console.settings.queue_name, target)
    return await lanes(console)


@api.post("/lanes/resume", dependencies=NEEDS_TOKEN, summary="Resume a lane or a job kind")
async def resume(console: Console, request: ControlRequest) -> LanesOut:
    target = controls.target_of(request.target)
    await controls.resume(await console.queue(), console.settings.queue_name, target)
    return await lanes(console)


@api.put("/limits/{job}", dependencies=NEEDS_TOKEN, summary="Cap a job kind's running jobs")
async def put_limit(console: Console, job: str, request: LimitRequest) -> LanesOut:
    name = controls.job_named(job)
    queue, queue_name = await console.queue(), console.settings.queue_name
    await controls.set_limit(queue, queue_name, name, request.limit)
    return await lanes(console)


@api.get("/flow", summary="Jobs finished per minute by lane and outcome, lately")
async def get_flow(
    console: Console, window: Annotated[Literal["hour", "day"], Query()] = "hour"
) -> FlowOut:
    return await flow(console, window)


@pages.post("/queue/pause", dependencies=Posted)
async def pause_form(console: Console, target: FormTarget) -> Response:
    chosen = controls.target_of(target)
    await controls.pause(await console.queue(), console.settings.queue_name, chosen)
    return RedirectResponse("/", 303)


@pages.post("/queue/resume", dependencies=Posted)
async def resume_form(console: Console, target: FormTarget) -> Response:
    chosen = controls.target_of(target)
    await controls.resume(await console.queue(), console.settings.queue_name, chosen)
    return RedirectResponse("/", 303)


@pages.get("/fragments/lanes")
async def lanes_fragment(request: Request, console: Console) -> Response:
    return render(request, "_queue_controls.html", {"lanes": await lanes(console)})
