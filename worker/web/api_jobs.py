"""The API's jobs: enqueue any registered job, read one, list the history, and what an
operator does with a failure (retry, mark handled) or a waiting job (cancel)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response

from domain import schemas, services
from domain.errors import JobNotFound
from domain.views import JobDetail
from worker.bootstrap import Services
from worker.ops.actions import cancel, retry_failure
from worker.ops.job_state import UnknownJob, current_outcome
from worker.registry import JOBS, Job
from worker.web import paging
from worker.web.console import Console
from worker.web.enqueueing import MAX_WAIT_SECONDS, answer, enqueue
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
    JobState,
    RetryRequest,
)
from worker.web.security import NEEDS_TOKEN

router = APIRouter(prefix="/api", tags=["jobs"], responses=ERRORS)
Wait = Annotated[
    float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the outcome")
]
IdempotencyKey = Annotated[
    str | None,
    Header(description="The job id: a repeat of the same request enqueues nothing new"),
]
Changes = NEEDS_TOKEN
PathJobId = Annotated[str, Path(pattern=NO_NUL)]


def _enqueue_route(job: Job[Any]) -> None:
    async def enqueue_job(
        console: Console,
        response: Response,
        payload: Annotated[dict[str, Any], Body()],
        wait: Wait = 0,
        idempotency_key: IdempotencyKey = None,
    ) -> Enqueued:
        answer_, response.status_code = await enqueue(
            console, job, payload, key=idempotency_key, wait=wait
        )
        return answer_

    router.add_api_route(
        f"/enqueue/{job.name}",
        enqueue_job,
        methods=["POST"],
        status_code=202,
        dependencies=Changes,
        name=f"enqueue_{job.name}",
        summary=f"Enqueue {job.name}: {job.summary}",
        responses={200: {"model": Enqueued, "description": "Waited: the job has ended"}},
    )


for _job in JOBS.values():
    if _job.producers_enqueue_it:
        _enqueue_route(_job)


@router.get("/jobs", summary="The job history, newest first, a page at a time")
async def list_jobs(
    console: Console,
    status: Annotated[schemas.JobState | None, Query()] = None,
    function: Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_:.\-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: Annotated[str | None, Query(max_length=400, description="A page cursor")] = None,
) -> JobList:
    query = paging.jobs_query(status=status, function=function, limit=limit, before=before)
    jobs = await console.read(services.list_jobs, query)
    return JobList(jobs=jobs, next=paging.next_cursor(jobs, limit))


@router.get("/failed", summary="Failures nobody has marked handled, newest first")
async def list_failed(console: Console, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Failed:
    async with console.unit_of_work() as uow:
        return Failed(failed=await services.list_failed(uow, limit))


@router.get("/children", summary="The jobs a submission became, in one state")
async def list_children(
    console: Console,
    parent_id: Annotated[str, Query(min_length=1, max_length=200, pattern=NO_NUL)],
    status: Annotated[schemas.JobState, Query()] = "failed",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Children:
    async with console.unit_of_work() as uow:
        submission = await services.get_submission(uow, parent_id)
        jobs = await services.list_children(uow, parent_id, status, limit)
    return Children(submission=submission, jobs=jobs)


@router.get("/jobs/{job_id:path}", summary="A job: its state, result, tries and children")
async def get_job(console: Console, job_id: PathJobId) -> JobPage:
    return await job_page(console, job_id)


async def job_page(console: Services, job_id: str) -> JobPage:
    """Where the job stands (Redis, else the history) and what the history knows of it."""
    outcome = await current_outcome(console, job_id, describe=True)
    if outcome is None:
        raise UnknownJob(job_id)
    async with console.unit_of_work() as uow:
        try:
            detail = await services.get_job(uow, job_id)
        except JobNotFound:
            detail = JobDetail(job=None, earlier_tries=[], children=None)
    return JobPage(
        job=JobState.of(outcome),
        record=detail.job,
        earlier_tries=detail.earlier_tries,
        children=detail.children,
    )


@router.post(
    "/jobs/retry",
    dependencies=Changes,
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


@router.post("/jobs/cancel", dependencies=Changes, summary="Take a waiting job off the queue")
async def cancel_job(console: Console, request: CancelRequest) -> Cancelled:
    state = await cancel(console, request.job_id, queue_name=console.settings.queue_name)
    return Cancelled(job_id=request.job_id, status=state)


@router.post("/jobs/handle", dependencies=Changes, summary="Mark failures handled")
async def handle_jobs(console: Console, request: HandleRequest) -> Handled:
    async with console.unit_of_work() as uow:
        return Handled(handled=await services.mark_handled(uow, request.chosen))
