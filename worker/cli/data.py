"""Read commands for the data: profiles and experiments, through the domain's use cases."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from worker.cli import output, tables
from worker.cli.options import AsJson, QueryLimit
from worker.cli.tables import Listing, table_time

profile_app = output.command_group("Read profiles.")
experiments_app = output.command_group("Read experiments and their runs.")

# Narrow enough for 80 columns; dbjobs profiles get ID and --json show every field.
PROFILES = Listing(
    "profiles",
    "profile(s)",
    ("id", "username", "email", "full name"),
    lambda p: (p["id"], p["username"], p["email"], p["full_name"]),
)
EXPERIMENTS = Listing(
    "experiments",
    "experiment(s)",
    ("id", "owner", "name", "state", "runs", "created"),
    lambda e: (
        *(e[key] for key in ("id", "owner_id", "name", "state", "run_count")),
        table_time(e["created_at"]),
    ),
)
RUNS = Listing(
    "runs",
    "run(s)",
    ("run", "state", "seed", "started", "ended", "failure reason"),
    lambda r: (
        *(r[key] for key in ("id", "state", "seed")),
        *(table_time(r[key]) for key in ("started_at", "ended_at")),
        r.get("failure_reason"),
    ),
)


@profile_app.command("get")
def profile_get(
    profile_id: Annotated[int, typer.Argument(metavar="PROFILE_ID", help="The profile id.")],
    as_json: AsJson = False,
) -> None:
    """Show one profile."""
    from domain.services import get_profile
    from worker.cli.connect import read

    profile = read(get_profile, profile_id)
    output.answer(profile, as_json, lambda p: tables.show_fields(f"profile {profile_id}", p))


@profile_app.command("list")
def profile_list(
    username: Annotated[
        str | None, typer.Option(metavar="PREFIX", help="Only usernames starting with this.")
    ] = None,
    email: Annotated[
        str | None, typer.Option(metavar="PREFIX", help="Only emails starting with this.")
    ] = None,
    limit: QueryLimit = 20,
    as_json: AsJson = False,
) -> None:
    """List profiles, newest first.

    Prefixes are matched as typed: case-sensitive, with % and _ taken literally.
    """
    from domain.schemas import ListProfiles
    from domain.services import list_profiles
    from worker.cli.connect import read
    from worker.cli.inputs import validated

    query = validated(ListProfiles, {"username": username, "email": email, "limit": limit})
    PROFILES.show(read(list_profiles, query), as_json)


@experiments_app.command("list")
def experiments_list(
    owner: Annotated[int | None, typer.Option(help="Only this profile's experiments.")] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only experiments in this state (created, running, ...)."),
    ] = None,
    limit: QueryLimit = 100,
    as_json: AsJson = False,
) -> None:
    """List experiments with their run counts."""
    from domain.schemas import ListExperiments
    from domain.services import list_experiments
    from worker.cli.connect import read
    from worker.cli.inputs import validated

    raw = {"limit": limit, "owner_id": owner, "state": state}
    query = validated(ListExperiments, raw, {"owner_id": "--owner"})
    EXPERIMENTS.show(read(list_experiments, query), as_json)


@experiments_app.command("show")
def experiments_show(
    experiment_id: Annotated[
        int, typer.Argument(metavar="EXPERIMENT_ID", help="The experiment id.")
    ],
    as_json: AsJson = False,
) -> None:
    """Show one experiment with its runs, and each run's metrics with their last values."""
    from domain.services import experiment_runs
    from worker.cli.connect import read
    from worker.cli.runs import RUN_METRICS

    def show(experiment: dict[str, Any]) -> None:
        runs, count = experiment.pop("runs"), experiment.pop("run_count")
        tables.show_fields(f"experiment {experiment_id}", experiment)
        cut = f"the newest {len(runs):,} of {count:,} runs"
        RUNS.table(runs, cut if count != len(runs) else None)
        metrics = [{**m, "run_id": r["id"]} for r in runs for m in r["metrics"]]
        points = sum(r["points"] for r in runs)
        RUN_METRICS.table(metrics, f"their metrics: {points:,} point(s)")

    output.answer(read(experiment_runs, experiment_id), as_json, show)
