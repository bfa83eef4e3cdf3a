"""Job commands: where a job stands and what it returned, the history's lists, and what an
operator does with a failure (retry it, mark it handled) or a queued job (cancel it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli import output
from worker.cli.output import CliError
from worker.text import ExitCode

if TYPE_CHECKING:
    from worker.cli.connect import Backends
    from worker.cli.submit import Delivery, Report
    from worker.ops.job_state import Outcome

AsJson = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
JobIdArgument = Annotated[str, typer.Argument(metavar="JOB_ID", help="The job id.")]
Limit = Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait for the outcome.")]
Timeout = Annotated[
    float | None, typer.Option(min=0, help="With --wait: stop waiting after SECONDS.")
]
ID_WIDTH = 16  # job ids in tables: the start, then an ellipsis (--json has them whole)


def status(job_id: JobIdArgument, as_json: AsJson = False) -> None:
    """Show where a job stands: its state, tries, last error and next retry.

    queued, deferred, in_progress or retrying while it waits or runs; succeeded, failed or
    cancelled once done (from the job history once Redis has forgotten it). For a
    submission (a file's batches, a generation's chunks), also how far its jobs got.
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
    line = f"job {outcome.job_id}: {outcome.status}"
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
    if children:
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
    from worker.cli.connect import run
    from worker.cli.follow import await_outcome, deadline_after
    from worker.ops.job_state import current_outcome

    async def read(backends: Backends) -> Outcome:
        if wait:
            return await await_outcome(backends, job_id, deadline_after(timeout), quiet=as_json)
        return _known(job_id, await current_outcome(backends, job_id, describe=True))

    outcome = run(read)
    if as_json:
        output.emit_json(outcome.as_json())
    elif outcome.status == "succeeded":
        output.show_json(outcome.result)
    elif outcome.status == "failed":
        output.error(f"job {job_id} ({outcome.function}) failed: {outcome.described_error()}")
    else:
        output.error(f"job {job_id} has no result yet: it is {outcome.status}")
    if outcome.status != "succeeded":
        raise typer.Exit(ExitCode.FAILED)


def _outcome(job_id: str) -> Outcome:
    from worker.cli.connect import run
    from worker.ops.job_state import current_outcome

    async def read(backends: Backends) -> Outcome:
        return _known(job_id, await current_outcome(backends, job_id, describe=True))

    return run(read)


def _known(job_id: str, outcome: Outcome | None) -> Outcome:
    if outcome is None:
        raise CliError(
            f"job {job_id} is unknown: not in Redis, not in the job history", job_id=job_id
        )
    return outcome


def recent(
    state: Annotated[
        str | None, typer.Option("--state", help="retrying, succeeded, failed or cancelled.")
    ] = None,
    function: Annotated[str | None, typer.Option(help="Only jobs of this function.")] = None,
    limit: Limit = 20,
    as_json: AsJson = False,
) -> None:
    """List recent jobs from the job history, newest first."""
    from domain.schemas import ListJobs
    from domain.services import list_jobs
    from worker.cli.connect import run
    from worker.cli.inputs import validated

    raw = {"status": state, "function": function, "limit": limit}
    query = validated(ListJobs, raw, lambda field: {"status": "--state"}.get(field, f"--{field}"))

    async def read(backends: Backends) -> list[dict[str, Any]]:
        async with backends.unit_of_work() as uow:
            return [job.model_dump(mode="json") for job in await list_jobs(uow, query)]

    jobs = run(read)
    if as_json:
        output.emit_json({"jobs": jobs})
        return
    rows = [
        (
            _short(j["job_id"]),
            j["function"],
            j["status"],
            j["tries"],
            output.table_time(j["finished_at"]),
        )
        for j in jobs
    ]
    columns = ("job id", "function", "state", "tries", "finished")
    output.show_table(f"{len(rows)} job(s)", columns, rows, empty="no job in the history")


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
    from domain.services import list_failed, mark_handled
    from worker.cli.connect import run

    async def read(backends: Backends) -> tuple[int, list[dict[str, Any]]]:
        marked = 0
        if handle or handle_all:
            async with backends.unit_of_work() as uow:
                marked = await mark_handled(uow, None if handle_all else list(handle or []))
        async with backends.unit_of_work() as uow:
            return marked, [job.model_dump(mode="json") for job in await list_failed(uow, limit)]

    marked, jobs = run(read)
    if as_json:
        output.emit_json({"handled": marked, "failed": jobs})
        return
    if handle or handle_all:
        output.note(f"marked {marked} failure(s) handled")
    rows = [
        (
            _short(j["job_id"]),
            j["function"],
            j["tries"],
            _error(j),
            output.table_time(j["finished_at"]),
        )
        for j in jobs
    ]
    columns = ("job id", "function", "tries", "error", "finished")
    title = f"{len(rows)} failed job(s), not handled"
    output.show_table(title, columns, rows, empty="no failed job waits to be handled")


def _finished(job: dict[str, Any]) -> str:
    return output.table_time(job["finished_at"])


def _error(job: dict[str, Any]) -> str:
    return f"{job['error_type']}: {job['error_message']}"


def _short(job_id: str) -> str:
    return job_id if len(job_id) <= ID_WIDTH else job_id[: ID_WIDTH - 1] + "…"


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
    from worker.cli.submit import Delivery, enqueue_and_wait, report_and_exit
    from worker.ops.actions import plan_attempt

    async def enqueue(backends: Backends) -> tuple[Delivery, Report]:
        plan = await plan_attempt(backends, job_id, force=force)
        delivery = Delivery(plan.attempt_id, wait, as_json, timeout)
        return delivery, await enqueue_and_wait(backends, delivery, plan.function, plan.payload)

    delivery, report = run(enqueue)
    report_and_exit(delivery, report)


def cancel(job_id: JobIdArgument, as_json: AsJson = False) -> None:
    """Cancel a job: a queued one is taken off the queue and recorded as cancelled; a
    running one is asked to stop (arq's abort), and ends as failed."""
    from worker.cli.connect import run

    async def stop(backends: Backends) -> str:
        return await _cancel(backends, job_id)

    state = run(stop)
    if as_json:
        output.emit_json({"job_id": job_id, "status": state})
    else:
        output.say(f"job {job_id}: {state}")


async def _cancel(backends: Backends, job_id: str) -> str:
    from worker.ops.actions import cancel

    return await cancel(backends, job_id, queue_name=backends.settings.queue_name)
