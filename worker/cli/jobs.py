"""One job's commands: where it stands and what it returned, and what an operator does with
a failure (retry it) or a waiting job (cancel it). The lists are ``worker.cli.lists``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli import output
from worker.cli.options import AsJson, JobIdArgument, Timeout, Wait
from worker.text import ExitCode

if TYPE_CHECKING:
    from worker.cli.connect import Backends
    from worker.cli.options import Delivery
    from worker.cli.submit import Report
    from worker.ops.job_state import Outcome


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
