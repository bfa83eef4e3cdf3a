"""Read commands: jobs (status, result) and data (profiles, experiments) via domain services."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli import output
from worker.cli.output import CliError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from worker.cli.connect import Backends
    from worker.cli.waiting import Outcome

profile_app = output.command_group("Read profiles.")
experiments_app = output.command_group("Read experiments and their runs.")

AsJson = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
JobIdArgument = Annotated[str, typer.Argument(metavar="JOB_ID", help="The job id.")]
ProfileIdArgument = Annotated[int, typer.Argument(metavar="PROFILE_ID", help="The profile id.")]
ExperimentIdArgument = Annotated[
    int, typer.Argument(metavar="EXPERIMENT_ID", help="The experiment id.")
]


class ExperimentStatus(StrEnum):
    created = "created"
    running = "running"
    completed = "completed"
    failed = "failed"


def status(
    job_id: JobIdArgument,
    as_json: AsJson = False,
) -> None:
    """Show where a job stands.

    One of queued, deferred, in_progress, succeeded, failed; from the job history in
    the database once Redis has forgotten the job.
    """
    from worker.cli.connect import run
    from worker.cli.waiting import current_outcome

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
    from worker.cli.waiting import await_outcome, current_outcome, deadline_after

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
        ExperimentStatus | None, typer.Option("--status", help="Only experiments in this status.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1-1000).")] = 100,
    as_json: AsJson = False,
) -> None:
    """List experiments with their run counts."""
    from domain.schemas import ListExperiments
    from domain.services import list_experiments
    from worker.cli.connect import run
    from worker.cli.inputs import checked

    raw = {"limit": limit, "owner_id": owner, "status": status_.value if status_ else None}
    query = ListExperiments.model_validate(checked(ListExperiments, raw, {"owner_id": "--owner"}))

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
    """The looked-up view, or the domain's 'not found' as a one-line refusal (exit 1)."""
    from domain.errors import NotFound

    try:
        return await lookup
    except NotFound as missing:
        raise CliError(str(missing)) from None


def _dumped(view: BaseModel) -> dict[str, Any]:
    return view.model_dump(mode="json")
