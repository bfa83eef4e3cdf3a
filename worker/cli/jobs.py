"""Job commands: where a job stands and what it returned, the history's lists, and what an
operator does with a failure (retry it, mark it handled) or a queued job (cancel it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli import output
from worker.cli.options import AsJson, JobIdArgument, Limit, Timeout, Wait
from worker.cli.output import Listing, table_time
from worker.text import ExitCode

if TYPE_CHECKING:
    from worker.cli.connect import Backends
    from worker.cli.options import Delivery
    from worker.cli.submit import Report
    from worker.ops.job_state import Outcome


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


def status(job_id: JobIdArgument, as_json: AsJson = False) -> None:
    """Show where a job stands: its state, tries, last error and next retry.

    queued, deferred, in_progress or retrying while it waits or runs; succeeded, failed or
    cancelled once done (from the job history once Redis has forgotten it). For a
    submission (a file's batches), also how far its jobs got; for a generate-profiles job,
    its generation as a whole: chunks committed and profiles written. JOB_ID may be any
    prefix of the id that only one job has.
    """
    outcome = _outcome(job_id)
    if as_json:
        output.emit_json(outcome.as_json(with_result=False))
        return
    output.say(_headline(outcome))
    for name, value in _details(outcome).items():
        output.say(f"  {name}: {value}")
    if outcome.source == "history":
        output.note("from the job history: Redis no longer has this job")


def _headline(outcome: Outcome) -> str:
    line = f"job {outcome.job_id}: {outcome.state}"
    if outcome.function:
        line += f" ({outcome.function}" + (f", try {outcome.tries})" if outcome.tries else ")")
    return line


def _details(outcome: Outcome) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if outcome.error is not None:
        fields["last error"] = outcome.described_error()
    if outcome.next_retry_at:
        fields["next try"] = output.short_time(outcome.next_retry_at)
    if outcome.finished_at and outcome.done:
        fields["finished"] = output.short_time(outcome.finished_at)
    children = outcome.children
    if children and "chunks" in children:  # a generation, as a whole
        fields["generation"] = (
            f"{children['generation_id']}: {children['chunks_done']} of {children['chunks']} "
            f"chunks committed, {children['profiles_written']:,} of "
            f"{children['profiles']:,} profiles written"
        )
    elif children:
        states = ", ".join(f"{n} {state}" for state, n in sorted(children["states"].items()))
        total = f" of {children['jobs']}" if children.get("jobs") else ""
        fields["jobs"] = f"{children['recorded']}{total} ended" + (f": {states}" if states else "")
    return fields


def result(
    job_id: JobIdArgument, wait: Wait = False, timeout: Timeout = None, as_json: AsJson = False
) -> None:
    """Print a finished job's result or error; kept in the job history after Redis forgets.

    Exit code 1 when the job failed or has not finished.
    """
    outcome = _outcome(job_id, wait=wait, timeout=timeout, quiet=as_json)
    if as_json:
        output.emit_json(outcome.as_json())
    elif outcome.state == "succeeded":
        output.show_json(outcome.result)
    elif outcome.state == "failed":
        output.error(f"job {job_id} ({outcome.function}) failed: {outcome.described_error()}")
    else:
        output.error(f"job {job_id} has no result yet: it is {outcome.state}")
    if outcome.state != "succeeded":
        raise typer.Exit(ExitCode.FAILED)


def _outcome(
    job_id: str, *, wait: bool = False, timeout: float | None = None, quiet: bool = False
) -> Outcome:
    """Where the job stands now, or (``wait``) once it has ended."""
    from worker.cli.connect import run
    from worker.cli.follow import await_outcome
    from worker.ops.following import deadline_after
    from worker.ops.job_ids import outcome_of, whole_job_id

    async def read(backends: Backends) -> Outcome:
        if wait:
            whole = await whole_job_id(backends, job_id)
            return await await_outcome(backends, whole, deadline_after(timeout), quiet=quiet)
        return await outcome_of(backends, job_id, describe=True)

    return run(read)


LIVE = Listing(
    "jobs",
    "job(s) on the queue",
    ("job id", "function", "state", "enqueued", "payload"),
    lambda j: (
        j["job_id"],
        j["function"],
        j["state"],
        table_time(j["enqueued_at"]),
        j["payload_preview"],
    ),
    "no job on the queue",
    whole=("job id", "function"),
    droppable=("payload", "enqueued"),
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
    limit: Limit = 20,
    as_json: AsJson = False,
) -> None:
    """List jobs: those on the queue, or the job history's, newest first."""
    from domain.history_lists import ListJobs, recent_jobs
    from worker.cli.connect import run
    from worker.cli.inputs import validated

    if state in ON_THE_QUEUE:
        _on_the_queue(state, function, limit, as_json)
        return
    query = validated(ListJobs, {"state": state, "function": function, "limit": limit})

    async def read(backends: Backends) -> list[dict[str, Any]]:
        jobs = await recent_jobs(
            backends.history_rows, state=query.state, function=query.function, limit=query.limit
        )
        return [job.model_dump(mode="json") for job in jobs]

    records = run(read)
    if not records and state and not as_json:
        output.say(f"no {state} job in the history")
        return
    JOBS.show(records, as_json)


def _on_the_queue(state: str | None, function: str | None, limit: int, as_json: bool) -> None:
    from worker.cli.connect import run
    from worker.ops.live_jobs import list_live_jobs

    async def read(backends: Backends) -> Any:
        queue, name = await backends.queue(), backends.settings.queue_name
        return await list_live_jobs(queue, name, state=state, function=function, limit=limit)  # type: ignore[arg-type]

    page = run(read)
    jobs = [_live(job) for job in page.jobs]
    if as_json:
        output.emit_json({"jobs": jobs, "next": page.next})
    elif not jobs:
        output.say(f"no {state} job on the queue")
    else:
        LIVE.table(jobs)


def _live(job: Any) -> dict[str, Any]:
    from dataclasses import asdict

    fields = asdict(job)
    for name in ("enqueued_at", "due_at", "started_at"):
        fields[name] = fields[name].isoformat() if fields[name] else None
    return fields


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
    from domain.history_lists import unhandled_failures
    from worker.cli.connect import run
    from worker.ops.actions import handle_failures

    marking = bool(handle or handle_all)

    async def mark_then_list(backends: Backends) -> tuple[int, list[dict[str, Any]]]:
        marked = 0
        if marking:
            marked = await handle_failures(backends, None if handle_all else list(handle or []))
        jobs = await unhandled_failures(backends.history_rows, limit)
        return marked, [job.model_dump(mode="json") for job in jobs]

    marked, jobs = run(mark_then_list)
    if as_json:
        output.emit_json({"handled": marked, "failed": jobs})
        return
    if marking:
        output.note(f"marked {marked} failure(s) handled")
    FAILED.table(jobs)


def retry(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="A failed job's id.")],
    force: Annotated[
        bool, typer.Option("--force", help="Retry even a failure a retry will not change.")
    ] = False,
    wait: Wait = False,
    as_json: AsJson = False,
    timeout: Timeout = None,
) -> None:
    """Re-enqueue a failed job as <job id>:retry:<n>, with its recorded payload.

    Running it again while that attempt is queued enqueues nothing; after the attempt
    fails, the next one is <job id>:retry:<n+1>; after one succeeds, retry refuses. A job
    that failed for a reason running it again cannot change (an invalid payload, an
    unknown id) needs --force.
    """
    from worker.cli.connect import run
    from worker.cli.options import Delivery
    from worker.cli.submit import followed, report_and_exit
    from worker.ops.actions import retry_failure

    async def enqueue(backends: Backends) -> tuple[Delivery, Report]:
        attempt = await retry_failure(backends, job_id, force=force)
        delivery = Delivery(attempt.job_id, wait, as_json, timeout)
        return delivery, await followed(backends, delivery, attempt.function, new=attempt.new)

    delivery, report = run(enqueue)
    report_and_exit(delivery, report)


def cancel(job_id: JobIdArgument, as_json: AsJson = False) -> None:
    """Cancel a job: a queued one is taken off the queue and recorded as cancelled; a
    running one is asked to stop (arq's abort), and ends as cancelled."""
    from worker.cli.connect import run
    from worker.ops.actions import cancel

    state = run(lambda backends: cancel(backends, job_id, queue_name=backends.settings.queue_name))
    if as_json:
        output.emit_json({"job_id": job_id, "state": state})
    else:
        output.say(f"job {job_id}: {state}")
