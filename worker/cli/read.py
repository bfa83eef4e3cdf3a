"""Read commands: jobs (status, result, the failed ones, a retry) and data (profiles,
experiments), through the domain's use cases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli import output
from worker.cli.output import CliError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from worker.cli.connect import Backends
    from worker.cli.follow import Outcome
    from worker.cli.submit import Delivery, Report

profile_app = output.command_group("Read profiles.")
experiments_app = output.command_group("Read experiments and their runs.")

AsJson = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
JobIdArgument = Annotated[str, typer.Argument(metavar="JOB_ID", help="The job id.")]
ProfileIdArgument = Annotated[int, typer.Argument(metavar="PROFILE_ID", help="The profile id.")]
ExperimentIdArgument = Annotated[
    int, typer.Argument(metavar="EXPERIMENT_ID", help="The experiment id.")
]


def status(
    job_id: JobIdArgument,
    as_json: AsJson = False,
) -> None:
    """Show where a job stands.

    One of queued, deferred, in_progress, succeeded, failed; from the job history in
    the database once Redis has forgotten the job.
    """
    from worker.cli.connect import run
    from worker.cli.follow import current_outcome

    async def read(backends: Backends) -> Outcome:
        return _known(job_id, await current_outcome(backends, job_id, describe=True))

    outcome = run(read)
    if as_json:
        output.emit_json(_outcome_json(outcome, with_result=False))
        return
    line = f"job {job_id}: {outcome.status}"
    if outcome.function:
        line += f" ({outcome.function}"
        line += f", try {outcome.tries})" if outcome.tries else ")"
    output.say(line)
    if outcome.status == "failed":
        output.say(f"error: {outcome.described_error()}")
    if outcome.source == "history":
        output.note("from the job history: Redis no longer has this job")


def result(
    job_id: JobIdArgument,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job to finish.")] = False,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="With --wait: stop waiting after SECONDS.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Print a finished job's result or error.

    Exit code 1 when the job failed or has not finished.
    """
    from worker.cli.connect import run
    from worker.cli.follow import await_outcome, current_outcome, deadline_after

    async def read(backends: Backends) -> Outcome:
        if wait:
            return await await_outcome(backends, job_id, deadline_after(timeout))
        return _known(job_id, await current_outcome(backends, job_id, describe=True))

    outcome = run(read)
    if as_json:
        output.emit_json(_outcome_json(outcome, with_result=True))
    elif outcome.status == "succeeded":
        _show_success(outcome)
    elif outcome.status == "failed":
        output.error(f"job {job_id} ({outcome.function}) failed: {outcome.described_error()}")
    else:
        output.error(f"job {job_id} has no result yet: it is {outcome.status}")
    if outcome.status != "succeeded":
        raise typer.Exit(output.EXIT_FAILED)


def _show_success(outcome: Outcome) -> None:
    if outcome.result is not None:
        output.show_json(outcome.result)
    else:
        output.say(f"job {outcome.job_id} ({outcome.function}) succeeded")
        output.note("its result is no longer kept in Redis; the job history has its outcome")


def _known(job_id: str, outcome: Outcome | None) -> Outcome:
    if outcome is None:
        raise CliError(f"job {job_id} is unknown: not in Redis, not in the job history")
    return outcome


def _outcome_json(outcome: Outcome, *, with_result: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "job_id": outcome.job_id,
        "function": outcome.function,
        "status": outcome.status,
        "source": outcome.source,
        "tries": outcome.tries,
        "finished_at": outcome.finished_at,
    }
    if with_result:
        data["result"] = outcome.result
    if outcome.error is not None:
        data["error"] = outcome.error
    return data


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
    from domain.services import plan_retry
    from worker.cli.connect import run
    from worker.cli.submit import Delivery, enqueue_and_wait, report_and_exit

    async def enqueue(backends: Backends) -> tuple[Delivery, Report]:
        async with backends.unit_of_work() as uow:
            plan = await _found(plan_retry(uow, job_id))
        delivery = Delivery(plan.attempt_id, wait, as_json, timeout)
        payload = _retryable(job_id, plan.function, plan.payload)
        return delivery, await enqueue_and_wait(backends, delivery, plan.function, payload)

    delivery, report = run(enqueue)
    report_and_exit(delivery, report)


def _retryable(job_id: str, function: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The recorded payload, checked again: the job may have changed since it ran."""
    from pydantic import ValidationError

    from worker.cli.inputs import describe
    from worker.jobs import JOBS

    job = JOBS.get(function)
    if job is None:
        raise CliError(f"job {job_id} ran {function!r}, which this CLI cannot enqueue")
    if job.job_id_field:  # an old record without it: the original job id named the thing made
        payload.setdefault(job.job_id_field, job_id)
    try:
        model = job.schema.model_validate(payload)
    except ValidationError as problem:
        raise CliError(
            f"job {job_id} cannot be retried as it was, its recorded payload is invalid "
            f"(enqueue a corrected job instead): {describe(problem)}"
        ) from None
    checked: dict[str, Any] = model.model_dump(
        mode="json", include=set(payload), exclude_unset=True
    )
    return checked


@profile_app.command("get")
def profile_get(
    profile_id: Annotated[int, typer.Argument(metavar="PROFILE_ID", help="The profile id.")],
    as_json: AsJson = False,
) -> None:
    """Show one profile."""
    from domain.services import get_profile
    from worker.cli.connect import run

    async def read(backends: Backends) -> dict[str, Any]:
        async with backends.unit_of_work() as uow:
            return _dumped(await _found(get_profile(uow, profile_id)))

    profile = run(read)
    if as_json:
        output.emit_json(profile)
    else:
        output.show_fields(f"profile {profile_id}", profile)


@experiments_app.command("list")
def experiments_list(
    owner: Annotated[int | None, typer.Option(help="Only this profile's experiments.")] = None,
    status_: Annotated[
        str | None,
        typer.Option("--status", help="Only experiments in this status (created, running, ...)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1-1000).")] = 100,
    as_json: AsJson = False,
) -> None:
    """List experiments with their run counts."""
    from domain.schemas import ListExperiments
    from domain.services import list_experiments
    from worker.cli.connect import run
    from worker.cli.inputs import validated

    raw = {"limit": limit, "owner_id": owner, "status": status_}
    query = validated(
        ListExperiments, raw, lambda field: {"owner_id": "--owner"}.get(field, f"--{field}")
    )

    async def read(backends: Backends) -> list[dict[str, Any]]:
        async with backends.unit_of_work() as uow:
            return [_dumped(summary) for summary in await list_experiments(uow, query)]

    experiments = run(read)
    if as_json:
        output.emit_json({"experiments": experiments})
        return
    columns = ("id", "owner", "name", "status", "runs", "created")
    rows = [
        (
            e["id"],
            e["owner_id"],
            e["name"],
            e["status"],
            e["run_count"],
            output.short_time(e["created_at"]),
        )
        for e in experiments
    ]
    output.show_table(f"{len(rows)} experiment(s)", columns, rows)


@experiments_app.command("show")
def experiments_show(
    experiment_id: Annotated[
        int, typer.Argument(metavar="EXPERIMENT_ID", help="The experiment id.")
    ],
    as_json: AsJson = False,
) -> None:
    """Show one experiment with its runs."""
    from domain.services import get_experiment
    from worker.cli.connect import run

    async def read(backends: Backends) -> dict[str, Any]:
        async with backends.unit_of_work() as uow:
            return _dumped(await _found(get_experiment(uow, experiment_id)))

    experiment = run(read)
    if as_json:
        output.emit_json(experiment)
        return
    runs = experiment.pop("runs")
    output.show_fields(f"experiment {experiment_id}", experiment)
    columns = ("run", "status", "seed", "started", "ended", "failure reason")
    rows = [
        (
            r["id"],
            r["status"],
            r["seed"],
            output.short_time(r["started_at"]),
            output.short_time(r["ended_at"]),
            r.get("failure_reason"),
        )
        for r in runs
    ]
    output.show_table(f"{len(rows)} run(s)", columns, rows)


async def _found(lookup: Any) -> Any:
    """The use case's answer, or the domain's refusal ('not found'...) in one line (exit 1)."""
    from domain.errors import DomainError

    try:
        return await lookup
    except DomainError as refusal:
        raise CliError(str(refusal)) from None


def _dumped(view: BaseModel) -> dict[str, Any]:
    return view.model_dump(mode="json")


@profile_app.command("list")
def profile_list(
    username: Annotated[
        str | None, typer.Option(metavar="PREFIX", help="Only usernames starting with this.")
    ] = None,
    email: Annotated[
        str | None, typer.Option(metavar="PREFIX", help="Only emails starting with this.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1-1000).")] = 20,
    as_json: AsJson = False,
) -> None:
    """List profiles, newest first.

    Prefixes are matched as typed: case-sensitive, with % and _ taken literally.
    """
    from domain.schemas import ListProfiles
    from domain.services import list_profiles
    from worker.cli.connect import run
    from worker.cli.inputs import validated

    raw = {"username": username, "email": email, "limit": limit}
    query = validated(ListProfiles, raw, lambda field: f"--{field}")

    async def read(backends: Backends) -> list[dict[str, Any]]:
        async with backends.unit_of_work() as uow:
            return [_dumped(profile) for profile in await list_profiles(uow, query)]

    profiles = run(read)
    if as_json:
        output.emit_json({"profiles": profiles})
        return
    # Narrow enough for 80 columns; jobs profile get ID and --json show every field.
    columns = ("id", "username", "email", "full name")
    rows = [(p["id"], p["username"], p["email"], p["full_name"]) for p in profiles]
    output.show_table(f"{len(rows)} profile(s)", columns, rows)
