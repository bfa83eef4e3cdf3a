"""The dashboard's job pages: the live overview, the history a page at a time, one job,
the failures with their actions, the workers. Forms post here and come back with 303."""

from __future__ import annotations

from typing import Annotated, get_args
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from domain import schemas, services
from worker.ops.actions import cancel, retry_failure
from worker.ops.job_state import current_outcome
from worker.web import paging, queue
from worker.web.api_jobs import PathJobId, job_page
from worker.web.console import Console
from worker.web.schemas import NO_NUL
from worker.web.security import checked_form
from worker.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE = 50
FormJobId = Annotated[str, Form(min_length=1, max_length=200, pattern=NO_NUL)]
Posted = [Depends(checked_form)]


@router.get("/")
async def overview_page(request: Request, console: Console) -> Response:
    return render(request, "overview.html", {"overview": await queue.overview(console)})


@router.get("/fragments/overview")
async def overview_fragment(request: Request, console: Console) -> Response:
    return render(request, "_overview.html", {"overview": await queue.overview(console)})


@router.get("/workers")
async def workers_page(request: Request, console: Console) -> Response:
    return render(request, "workers.html", {"workers": await queue.workers(console)})


@router.get("/fragments/workers")
async def workers_fragment(request: Request, console: Console) -> Response:
    return render(request, "_workers.html", {"workers": await queue.workers(console)})


@router.get("/jobs")
async def jobs_page(
    request: Request,
    console: Console,
    status: Annotated[schemas.JobState | None, Query()] = None,
    function: Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_:.\-]*$")] = None,
    before: Annotated[str | None, Query(max_length=400)] = None,
    job_id: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
) -> Response:
    # The search box: one job by its id.
    if job_id and await current_outcome(console, job_id) is not None:
        return RedirectResponse("/jobs/" + quote(job_id, safe=""), 303)
    query = paging.jobs_query(status=status, function=function or None, limit=PAGE, before=before)
    jobs = await console.read(services.list_jobs, query)
    context = {
        "jobs": jobs,
        "next": paging.next_cursor(jobs, PAGE),
        "status": status or "",
        "function": function or "",
        "states": get_args(schemas.JobState),
        "searched": job_id or "",
        "first_page": before is None,
    }
    return render(request, "jobs.html", context)


@router.get("/failed")
async def failed_page(request: Request, console: Console) -> Response:
    failed = await console.read(services.list_failed, PAGE)
    return render(request, "failed.html", {"failed": failed})


@router.get("/jobs/{job_id:path}")
async def job_detail_page(request: Request, console: Console, job_id: PathJobId) -> Response:
    return render(request, "job.html", {"page": await job_page(console, job_id)})


@router.post("/jobs/retry", dependencies=Posted)
async def retry_form(
    console: Console, job_id: FormJobId, force: Annotated[bool, Form()] = False
) -> Response:
    attempt = await retry_failure(console, job_id, force=force)
    return RedirectResponse("/jobs/" + quote(attempt.job_id, safe=""), 303)


@router.post("/jobs/handle", dependencies=Posted)
async def handle_form(console: Console, job_id: FormJobId) -> Response:
    async with console.unit_of_work() as uow:
        await services.mark_handled(uow, [job_id])
    return RedirectResponse("/jobs/" + quote(job_id, safe=""), 303)


@router.post("/jobs/cancel", dependencies=Posted)
async def cancel_form(console: Console, job_id: FormJobId) -> Response:
    await cancel(console, job_id, queue_name=console.settings.queue_name)
    return RedirectResponse("/jobs/" + quote(job_id, safe=""), 303)
