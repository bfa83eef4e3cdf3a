"""The jobs on the queue, one by one: waiting and running, lane by lane, a page at a
time (``worker.ops.live_jobs``), over the API and on the console's Queued page, where a
waiting job is cancelled with the job page's own form."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from worker.lanes import LANES, Lane
from worker.ops.live_jobs import LIVE_STATES, LiveState, list_live_jobs
from worker.web.console import Console
from worker.web.params import AnyIfBlank, Limit
from worker.web.schemas import ERRORS, LiveJobOut, LiveJobs
from worker.web.strict_query import STRICT
from worker.web.templating import render

api = APIRouter(prefix="/api", tags=["queue"], responses=ERRORS, dependencies=STRICT)
pages = APIRouter(include_in_schema=False)
PAGE = 50
Function = Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_:.\-]*$")]
State = Annotated[LiveState | None, AnyIfBlank, Query()]
InLane = Annotated[Lane | None, AnyIfBlank, Query(description="Only the jobs waiting in this lane")]
Start = Annotated[int, Query(ge=0, description="The position in the queue to start from")]


async def live_jobs(
    console: Console,
    state: LiveState | None,
    function: str | None,
    lane: Lane | None,
    limit: int,
    start: int,
) -> LiveJobs:
    queue, name = await console.queue(), console.settings.queue_name
    page = await list_live_jobs(
        queue, name, state=state, function=function or None, lane=lane, limit=limit, start=start
    )
    return LiveJobs(jobs=[LiveJobOut(**asdict(job)) for job in page.jobs], next=page.next)


@api.get("/queue/jobs", summary="The jobs on the queue, waiting and running, lane by lane")
async def list_queue_jobs(
    console: Console,
    state: State = None,
    function: Function = None,
    lane: InLane = None,
    limit: Limit = 50,
    start: Start = 0,
) -> LiveJobs:
    return await live_jobs(console, state, function, lane, limit, start)


@pages.get("/queued")
async def queued_page(
    request: Request,
    console: Console,
    state: State = None,
    function: Function = None,
    lane: InLane = None,
    start: Start = 0,
) -> Response:
    page = await live_jobs(console, state, function, lane, PAGE, start)
    context = {
        "jobs": page.jobs,
        "next": page.next,
        "state": state or "",
        "function": function or "",
        "lane": lane or "",
        "lanes": LANES,
        "states": LIVE_STATES,
        "first_page": start == 0,
    }
    return render(request, "queued.html", context)
