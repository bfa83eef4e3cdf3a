"""The durable job history: ``jobs failed`` lists failures, ``jobs retry`` re-enqueues one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli import output
from worker.cli.output import BadInput, CliError

if TYPE_CHECKING:
    from domain.uow import SqlAlchemyUnitOfWork
    from worker.cli.connect import Backends
    from worker.cli.submit import Delivery, Report

MAX_JOB_ID = 200  # job_records.job_id
MAX_RETRIES = 1000
SCHEMAS = {
    "generate_profiles": "GenerateProfiles",
    "generate_profiles_chunk": "GenerateChunk",
    "create_profile": "CreateProfile",
    "update_profile": "UpdateProfile",
    "create_experiment": "CreateExperiment",
    "start_run": "StartRun",
    "finish_run": "FinishRun",
    "record_metric": "RecordMetric",
    "record_metrics": "RecordMetrics",
    "fail_stale_runs": "FailStaleRuns",
    "prune_job_history": "PruneJobHistory",
}

AsJson = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]


def failed(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    as_json: AsJson = False,
) -> None:
    """List jobs that failed for good, newest first."""
    from worker.cli.connect import run

    async def read(backends: Backends) -> list[dict[str, Any]]:
        async with backends.unit_of_work() as uow:
            return [
                {
                    "job_id": record.job_id,
                    "function": record.function,
                    "tries": record.tries,
                    "error_type": record.error_type,
                    "error_message": record.error_message,
                    "finished_at": record.finished_at.isoformat(),
                    "retryable": record.payload is not None,
                }
                for record in await uow.jobs.list_failed(limit)
            ]

    records = run(read)
    if as_json:
        output.emit_json({"failed": records})
        return
    columns = ("job id", "function", "tries", "error", "message", "finished at")
    rows = [
        (
            r["job_id"],
            r["function"],
            r["tries"],
            r["error_type"],
            r["error_message"],
            output.short_time(r["finished_at"]),
        )
        for r in records
    ]
    output.show_table(f"{len(rows)} failed job(s)", columns, rows)


def retry(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="A failed job's id.")],
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the new attempt's outcome.")
    ] = False,
    as_json: AsJson = False,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="With --wait: stop waiting after SECONDS.")
    ] = None,
) -> None:
    """Re-enqueue a failed job as <job id>:retry:<n>.

    It runs the recorded function with the recorded payload.

    Running it again while that attempt is queued enqueues nothing; after the attempt
    fails, the next one is <job id>:retry:<n+1>; after one succeeds, retry refuses.
    """
    from worker.cli.connect import run
    from worker.cli.submit import Delivery, enqueue_and_wait, report_and_exit

    async def enqueue(backends: Backends) -> tuple[Delivery, Report]:
        async with backends.unit_of_work() as uow:
            function, payload, attempt_id = await plan_retry(uow, job_id)
        delivery = Delivery(attempt_id, wait, as_json, timeout)
        return delivery, await enqueue_and_wait(backends, delivery, function, payload)

    delivery, report = run(enqueue)
    report_and_exit(delivery, report)


async def plan_retry(uow: SqlAlchemyUnitOfWork, job_id: str) -> tuple[str, dict[str, Any], str]:
    """The function, checked payload and id of the next attempt; a refusal when there is none."""
    record = await uow.jobs.get(job_id)
    if record is None:
        raise CliError(f"job {job_id} is not in the job history (see `jobs status {job_id}`)")
    if record.status == "succeeded":
        raise CliError(f"job {job_id} succeeded: there is nothing to retry")
    if record.payload is None:
        raise CliError(
            f"job {job_id} has no recorded payload (not a JSON object, or too large): "
            "enqueue it anew"
        )
    function, payload = record.function, dict(record.payload)
    if function == "generate_profiles":
        payload.setdefault("key", job_id)  # the same generation, not a new one
    return function, _checked(function, payload, job_id), await next_attempt_id(uow, job_id)


async def next_attempt_id(uow: SqlAlchemyUnitOfWork, job_id: str) -> str:
    for attempt in range(1, MAX_RETRIES + 1):
        attempt_id = f"{job_id}:retry:{attempt}"
        if len(attempt_id) > MAX_JOB_ID:
            raise CliError(f"job {job_id}: its id is too long to derive a retry id from")
        record = await uow.jobs.get(attempt_id)
        if record is None:
            return attempt_id
        if record.status == "succeeded":
            raise CliError(f"job {job_id} was already retried: {attempt_id} succeeded")
    raise CliError(f"job {job_id} was retried {MAX_RETRIES} times already")


def _checked(function: str, payload: dict[str, Any], job_id: str) -> dict[str, Any]:
    from domain import schemas
    from worker.cli.inputs import checked

    if function not in SCHEMAS:
        raise CliError(f"job {job_id} ran {function!r}, which this CLI cannot enqueue")
    try:
        return checked(getattr(schemas, SCHEMAS[function]), payload, as_options=False)
    except BadInput as problem:
        raise CliError(
            f"job {job_id} cannot be retried as it was, its recorded payload is invalid "
            f"(enqueue a corrected job instead): {problem.message}"
        ) from None
