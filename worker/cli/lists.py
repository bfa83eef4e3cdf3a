"""The job lists: the jobs on the queue, lane by lane (``worker.ops.live_jobs``), or the
history's, newest first, and the failures nobody has handled yet (``domain.history_queries``,
read without SQLAlchemy); ``--handle`` marks failures handled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli import output
from worker.cli.options import AsJson, Limit, QueueLane
from worker.cli.tables import Listing, table_time

if TYPE_CHECKING:
    from worker.cli.connect import Backends


def _finished(job: Mapping[str, Any]) -> str:
    return table_time(job["finished_at"])


JOBS = Listing(
    "jobs",
    "job(s)",
    ("job id", "function", "state", "tries", "finished"),
    lambda j: (j["job_id"], j["function"], j["state"], j["tries"], _finished(j)),
    "no job in the history",
    whole=("job id", "function"),
    droppable=("tries", "finished"),
)
FAILED = Listing(
    "failed",
    "failed job(s), not handled",
    ("job id", "function", "tries", "error", "finished"),
    lambda j: (
        j["job_id"],
        j["function"],
        j["tries"],
        f"{j['error_type']}: {j['error_message']}",
        _finished(j),
    ),
    "no failed job waits to be handled",
    whole=("job id", "function"),
    droppable=("tries", "finished", "function"),
)


LIVE = Listing(
    "jobs",
    "job(s) on the queue",
    ("job id", "function", "lane", "state", "enqueued", "payload"),
    lambda j: (
        j["job_id"],
        j["function"],
        j["lane"],
        j["state"],
        table_time(j["enqueued_at"]),
        j["payload_preview"],
    ),
    "no job on the queue",
    whole=("job id", "function"),
    droppable=("payload", "enqueued", "lane"),
)
ON_THE_QUEUE = ("queued", "deferred", "running")  # worker.ops.live_jobs.LIVE_STATES


def recent(
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            help="queued, deferred or running (the queue, in its order); retrying, "
            "succeeded, failed or cancelled (the job history, newest first).",
        ),
    ] = None,
    function: Annotated[str | None, typer.Option(help="Only jobs of this function.")] = None,
    lane: QueueLane = None,
    limit: Limit = 20,
    as_json: AsJson = False,
) -> None:
    """List jobs: those on the queue (lane by lane, most urgent first), or the job
    history's, newest first. --lane lists the queue."""
    from domain.history_queries import ListJobs, recent_jobs
    from worker.cli.connect import run
    from worker.cli.inputs import validated

    if state in ON_THE_QUEUE or (lane is not None and state is None):
        _on_the_queue(state, function, lane, limit, as_json)
        return
    if lane is not None:
        raise typer.BadParameter(
            f"{state} jobs are the history's, which has no lanes", None, None, "'--lane'"
        )
    query = validated(ListJobs, {"state": state, "function": function, "limit": limit})

    async def read(backends: Backends) -> list[dict[str, Any]]:
        jobs = await recent_jobs(
            backends.read_rows, state=query.state, function=query.function, limit=query.limit
        )
        return [job.model_dump(mode="json") for job in jobs]

    records = run(read)
    if not records and state and not as_json:
        output.say(f"no {state} job in the history")
        return
    JOBS.show(records, as_json)


def _on_the_queue(
    state: str | None, function: str | None, lane: str | None, limit: int, as_json: bool
) -> None:
    from pydantic_core import to_jsonable_python

    from worker.cli.connect import run
    from worker.ops.live_jobs import list_live_jobs

    async def read(backends: Backends) -> Any:
        queue, name = await backends.queue(), backends.settings.queue_name
        return await list_live_jobs(
            queue,
            name,
            state=state,  # type: ignore[arg-type]
            function=function,
            lane=lane,  # type: ignore[arg-type]
            limit=limit,
        )

    page = run(read)
    jobs = to_jsonable_python(page.jobs)
    if as_json:
        output.emit_json({"jobs": jobs, "next": page.next})
    elif not jobs:
        output.say(f"no {state} job on the queue" if state else "no job on the queue")
    else:
        LIVE.table(jobs)


def failed(
    handle: Annotated[
        list[str] | None,
        typer.Option("--handle", metavar="JOB_ID", help="Mark this failure handled (repeatable)."),
    ] = None,
    handle_all: Annotated[
        bool, typer.Option("--handle-all", help="Mark every listed failure handled.")
    ] = False,
    limit: Limit = 20,
    as_json: AsJson = False,
) -> None:
    """List jobs that failed for good and nobody has handled yet, newest first.

    --handle JOB_ID (or --handle-all) marks failures handled: they leave this list and stay
    in the history.
    """
    from domain.history_queries import unhandled_failures
    from worker.cli.connect import run
    from worker.ops.actions import handle_failures

    marking = bool(handle or handle_all)

    async def mark_then_list(backends: Backends) -> tuple[int, list[dict[str, Any]]]:
        marked = 0
        if marking:
            marked = await handle_failures(backends, None if handle_all else list(handle or []))
        jobs = await unhandled_failures(backends.read_rows, limit)
        return marked, [job.model_dump(mode="json") for job in jobs]

    marked, jobs = run(mark_then_list)
    if as_json:
        output.emit_json({"handled": marked, "failed": jobs})
        return
    if marking:
        output.note(f"marked {marked} failure(s) handled")
    FAILED.table(jobs)
