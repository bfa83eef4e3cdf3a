"""The jobs, over the API and on the dashboard: enqueue any registered job, read one, list
the history a page at a time, and what an operator does with a failure (retry, mark
handled) or a waiting job (cancel). The dashboard's forms post here and come back with
303 to the job's page."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, get_args
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from domain import schemas, services
from domain.errors import JobNotFound
from domain.views import JobDetail
from worker.bootstrap import Services
from worker.ops.actions import cancel, handle_failures, retry_failure
from worker.ops.job_ids import outcome_of
from worker.ops.job_state import current_outcome
from worker.ops.live_jobs import on_the_queue
from worker.registry import JOBS
from worker.web import paging
from worker.web.console import Console
from worker.web.enqueueing import Wait, add_enqueue_route, answer
from worker.web.params import Cursor, FormBack, FormJobId, FormJobIds, JobState, Limit, PathJobId
from worker.web.schemas import (
    ERRORS,
    NO_NUL,
    Cancelled,
    CancelRequest,
    Children,
    Enqueued,
    Failed,
    Handled,
    HandleRequest,
    JobList,
    JobPage,
    QueuedOut,
    RetryRequest,
)
from worker.web.security import NEEDS_TOKEN, checked_form
from worker.web.strict_query import STRICT
from worker.web.templating import render

api = APIRouter(prefix="/api", tags=["jobs"], responses=ERRORS, dependencies=STRICT)
pages = APIRouter(include_in_schema=False)
PAGE = 50
FUNCTION = r"^[A-Za-z0-9_:.\-]+$"
Posted = [Depends(checked_form)]
JobId = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]

for _job in JOBS.values():
    if _job.producers_enqueue_it:
        add_enqueue_route(
            api,
            f"/enqueue/{_job.name}",
            _job,
            name=f"enqueue_{_job.name}",
            summary=f"Enqueue {_job.name}: {_job.summary}",
        )


@api.get("/jobs", summary="The job history, newest first, a page at a time")
async def list_jobs(
    console: Console,
    state: JobState = None,
    function: Annotated[str | None, Query(max_length=100, pattern=FUNCTION)] = None,
    limit: Limit = 50,
    before: Cursor = None,
) -> JobList:
    query = paging.jobs_query(state=state, function=function, limit=limit, before=before)
    jobs = await console.read(services.list_jobs, query)
    return JobList(jobs=jobs, next=paging.next_cursor(jobs, limit))


@api.get("/failed", summary="Failures nobody has marked handled, newest first")
async def list_failed(console: Console, limit: Limit = 50) -> Failed:
    return Failed(failed=await console.read(services.list_failed, limit))


@api.get("/children", summary="The jobs a submission became, in one state")
async def list_children(
    console: Console,
    parent_id: Annotated[str, Query(min_length=1, max_length=200, pattern=NO_NUL)],
    state: Annotated[schemas.JobState, Query()] = "failed",
    limit: Limit = 50,
) -> Children:
    async with console.unit_of_work() as uow:
        submission = await services.get_submission(uow, parent_id)
        jobs = await services.list_children(uow, parent_id, state, limit)
    return Children(submission=submission, jobs=jobs)


@api.get("/jobs/{job_id:path}", summary="A job: its state, result, tries and children")
async def get_job(console: Console, job_id: PathJobId) -> JobPage:
    return await job_page(console, job_id)


async def job_page(console: Services, job_id: str) -> JobPage:
    """Where the job stands (Redis, else the history) and what the history knows of it."""
    outcome = await outcome_of(console, job_id, describe=True)
    async with console.unit_of_work() as uow:
        try:
            detail = await services.get_job(uow, outcome.job_id)
        except JobNotFound:
            detail = JobDetail(job=None, earlier_tries=[], children=None)
    waiting = None if outcome.done else await on_the_queue(console, outcome.job_id)
    return JobPage(
        job=outcome,
        record=detail.job,
        earlier_tries=detail.earlier_tries,
        children=detail.children,
        queued=QueuedOut(**asdict(waiting)) if waiting else None,
    )


@api.post(
    "/jobs/retry",
    dependencies=NEEDS_TOKEN,
    status_code=202,
    summary="Enqueue a failed job again, as <job id>:retry:<n>, from its recorded payload",
)
async def retry_job(
    console: Console, response: Response, request: RetryRequest, wait: Wait = 0
) -> Enqueued:
    attempt = await retry_failure(console, request.job_id, force=request.force)
    enqueued, response.status_code = await answer(
        console, attempt.job_id, attempt.function, new=attempt.new, wait=wait
    )
    return enqueued


@api.post("/jobs/cancel", dependencies=NEEDS_TOKEN, summary="Take a waiting job off the queue")
async def cancel_job(console: Console, request: CancelRequest) -> Cancelled:
    state = await cancel(console, request.job_id, queue_name=console.settings.queue_name)
    return Cancelled(job_id=request.job_id, state=state)


@api.post("/jobs/handle", dependencies=NEEDS_TOKEN, summary="Mark failures handled")
async def handle_jobs(console: Console, request: HandleRequest) -> Handled:
    return Handled(handled=await handle_failures(console, request.chosen))


@pages.get("/jobs")
async def jobs_page(
    request: Request,
    console: Console,
    state: JobState = None,
    function: Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_:.\-]*$")] = None,
    before: Cursor = None,
    job_id: JobId = None,
) -> Response:
    # The search box: one job by its id.
    if job_id and await current_outcome(console, job_id) is not None:
        return _to_job(job_id)
    query = paging.jobs_query(state=state, function=function or None, limit=PAGE, before=before)
    jobs = await console.read(services.list_jobs, query)
    context = {
        "jobs": jobs,
        "next": paging.next_cursor(jobs, PAGE),
        "state": state or "",
        "function": function or "",
        "states": get_args(schemas.JobState),
        "searched": job_id or "",
        "first_page": before is None,
    }
    return render(request, "jobs.html", context)


@pages.get("/failed")
async def failed_page(
    request: Request,
    console: Console,
    retried: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    handled: Annotated[int | None, Query(ge=0, le=1000)] = None,
) -> Response:
    failed = await console.read(services.list_failed, PAGE)
    context = {"failed": failed, "retried": retried, "handled": handled}
    return render(request, "failed.html", context)


@pages.get("/jobs/{job_id:path}")
async def job_detail_page(request: Request, console: Console, job_id: PathJobId) -> Response:
    return render(request, "job.html", {"page": await job_page(console, job_id)})


@pages.post("/jobs/retry", dependencies=Posted)
async def retry_form(
    console: Console,
    job_id: FormJobId,
    force: Annotated[bool, Form()] = False,
    back: FormBack = None,
) -> Response:
    attempt = await retry_failure(console, job_id, force=force)
    if back is not None:
        return _back(back, retried=attempt.job_id)
    return _to_job(attempt.job_id)


@pages.post("/jobs/handle", dependencies=Posted)
async def handle_form(console: Console, job_id: FormJobIds, back: FormBack = None) -> Response:
    """One failure from its page, or the checked ones of the failed list (``back``)."""
    async with console.unit_of_work() as uow:
        handled = await services.mark_handled(uow, job_id)
    if back is not None:
        return _back(back, handled=handled)
    return _to_job(job_id[0])


@pages.post("/jobs/cancel", dependencies=Posted)
async def cancel_form(console: Console, job_id: FormJobId) -> Response:
    await cancel(console, job_id, queue_name=console.settings.queue_name)
    return _to_job(job_id)


def _to_job(job_id: str) -> Response:
    return RedirectResponse("/jobs/" + quote(job_id, safe=""), 303)


def _back(back: str, **told: str | int) -> Response:
    """Back to the list the form was on, its query kept, with what was done."""
    path, _, query = back.partition("?")
    kept = [(key, value) for key, value in parse_qsl(query) if key not in told]
    return RedirectResponse(f"{path}?{urlencode([*kept, *told.items()])}", 303)
