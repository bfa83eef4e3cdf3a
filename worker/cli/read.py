"""Read commands for the data: profiles, experiments and their runs, through the domain's
use cases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli import output
from worker.cli.output import CliError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from worker.cli.connect import Backends

profile_app = output.command_group("Read profiles.")
experiments_app = output.command_group("Read experiments and their runs.")

AsJson = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
JobIdArgument = Annotated[str, typer.Argument(metavar="JOB_ID", help="The job id.")]
ProfileIdArgument = Annotated[int, typer.Argument(metavar="PROFILE_ID", help="The profile id.")]
ExperimentIdArgument = Annotated[
    int, typer.Argument(metavar="EXPERIMENT_ID", help="The experiment id.")
]


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
            return dumped(await found(get_profile(uow, profile_id)))

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
            return [dumped(summary) for summary in await list_experiments(uow, query)]

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
            output.table_time(e["created_at"]),
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
    """Show one experiment with its runs, and each run's metrics with their last values."""
    from domain.services import experiment_runs
    from worker.cli.connect import run
    from worker.cli.runs import show_metrics

    async def read(backends: Backends) -> dict[str, Any]:
        async with backends.unit_of_work() as uow:
            return dumped(await found(experiment_runs(uow, experiment_id)))

    experiment = run(read)
    if as_json:
        output.emit_json(experiment)
        return
    runs, count = experiment.pop("runs"), experiment.pop("run_count")
    output.show_fields(f"experiment {experiment_id}", experiment)
    columns = ("run", "status", "seed", "started", "ended", "failure reason")
    rows = [
        (
            r["id"],
            r["status"],
            r["seed"],
            output.table_time(r["started_at"]),
            output.table_time(r["ended_at"]),
            r.get("failure_reason"),
        )
        for r in runs
    ]
    title = (
        f"{len(rows)} run(s)"
        if count == len(rows)
        else f"the newest {len(rows):,} of {count:,} runs"
    )
    output.show_table(title, columns, rows)
    metrics = [{**m, "run_id": r["id"]} for r in runs for m in r["metrics"]]
    points = sum(r["points"] for r in runs)
    show_metrics(f"their metrics: {points:,} point(s)", metrics, runs=True)


async def found(lookup: Any) -> Any:
    """The use case's answer, or the domain's refusal ('not found'...) in one line (exit 1)."""
    from domain.errors import DomainError

    try:
        return await lookup
    except DomainError as refusal:
        raise CliError(str(refusal)) from None


def dumped(view: BaseModel) -> dict[str, Any]:
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
            return [dumped(profile) for profile in await list_profiles(uow, query)]

    profiles = run(read)
    if as_json:
        output.emit_json({"profiles": profiles})
        return
    # Narrow enough for 80 columns; jobs profile get ID and --json show every field.
    columns = ("id", "username", "email", "full name")
    rows = [(p["id"], p["username"], p["email"], p["full_name"]) for p in profiles]
    output.show_table(f"{len(rows)} profile(s)", columns, rows)
