"""``jobs enqueue <job>``: one command per job, payload checked before Redis is touched."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from worker.cli.output import command_group

app = command_group("Put a job on the queue. Every job takes --wait, --json, --job-id, --timeout.")

Wait = Annotated[
    bool, typer.Option("--wait", help="Wait for the outcome and print it; exit 1 if it failed.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
JobId = Annotated[
    str | None,
    typer.Option(
        "--job-id", help="Job id (default: a new uuid4 hex). An id already used enqueues nothing."
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0,
        help="With --wait: stop waiting after SECONDS (exit 3); the job goes on.",
    ),
]


class RunEnd(StrEnum):
    completed = "completed"
    failed = "failed"


class FileFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def given(**fields: Any) -> dict[str, Any]:
    """The options actually given: the rest is left to the schema's or the worker's defaults."""
    return {name: value for name, value in fields.items() if value is not None}


@app.command("generate-profiles")
def generate_profiles(
    count: Annotated[int, typer.Option(help="How many profiles to generate.")],
    seed: Annotated[int | None, typer.Option(help="Seed of the fake data (default 0).")] = None,
    chunk_size: Annotated[
        int | None, typer.Option(help="Profiles per chunk job (default: the worker's setting).")
    ] = None,
    wait: Wait = False,
    as_json: AsJson = False,
    job_id: JobId = None,
    timeout: Timeout = None,
) -> None:
    """Generate fake profiles.

    They are made in chunk jobs, each idempotent; --wait shows a progress bar until the
    last chunk commits. The job id is the generation's key.
    """
    from domain.schemas import GenerateProfiles
    from worker.cli.inputs import checked
    from worker.cli.progress import submit_generation
    from worker.cli.submit import Delivery

    delivery = Delivery.of(job_id, wait, as_json, timeout)
    # The job id is the generation's key: the same job id is always the same generation.
    raw = given(count=count, seed=seed, chunk_size=chunk_size, key=delivery.job_id)
    submit_generation(delivery, checked(GenerateProfiles, raw, {"key": "--job-id"}))


@app.command("create-profile")
def create_profile(
    username: Annotated[str, typer.Option(help="3-64 characters: letters, digits, _ . -")],
    email: Annotated[str, typer.Option(help="A valid e-mail address.")],
    full_name: Annotated[str, typer.Option(help="The person's name.")],
    bio: Annotated[str | None, typer.Option(help="A short text.")] = None,
    wait: Wait = False,
    as_json: AsJson = False,
    job_id: JobId = None,
    timeout: Timeout = None,
) -> None:
    """Create a profile (the result has its id)."""
    from domain.schemas import CreateProfile
    from worker.cli.inputs import checked
    from worker.cli.submit import Delivery, submit

    delivery = Delivery.of(job_id, wait, as_json, timeout)
    raw = given(username=username, email=email, full_name=full_name, bio=bio)
    submit(delivery, "create_profile", checked(CreateProfile, raw))


@app.command("update-profile")
def update_profile(
    profile_id: Annotated[int, typer.Argument(metavar="PROFILE_ID", help="The profile to change.")],
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", help="FIELD=VALUE, repeatable: username, email, full_name, bio."),
    ] = None,
    expected_version: Annotated[
        int | None, typer.Option(help="Refuse the change unless the profile is at this version.")
    ] = None,
    wait: Wait = False,
    as_json: AsJson = False,
    job_id: JobId = None,
    timeout: Timeout = None,
) -> None:
    """Change fields of a profile.

    For example: jobs enqueue update-profile 42 --set bio="Hello" --set full_name="Ada L"
    """
    from domain.schemas import READ_ONLY_PROFILE_FIELDS, ProfileChanges, UpdateProfile
    from worker.cli.inputs import checked, parse_assignments
    from worker.cli.submit import Delivery, submit

    delivery = Delivery.of(job_id, wait, as_json, timeout)
    changes = parse_assignments(
        assignments or [],
        settable=ProfileChanges.model_fields.keys(),
        read_only=READ_ONLY_PROFILE_FIELDS,
    )
    raw = given(profile_id=profile_id, changes=changes, expected_version=expected_version)
    submit(delivery, "update_profile", checked(UpdateProfile, raw, {"profile_id": "PROFILE_ID"}))


@app.command("create-experiment")
def create_experiment(
    owner: Annotated[int, typer.Option(help="Id of the owning profile.")],
    name: Annotated[str, typer.Option(help="Unique among the owner's experiments.")],
    description: Annotated[str | None, typer.Option(help="What it is about.")] = None,
    wait: Wait = False,
    as_json: AsJson = False,
    job_id: JobId = None,
    timeout: Timeout = None,
) -> None:
    """Create an experiment (the result has its id)."""
    from domain.schemas import CreateExperiment
    from worker.cli.inputs import checked
    from worker.cli.submit import Delivery, submit

    delivery = Delivery.of(job_id, wait, as_json, timeout)
    raw = given(owner_id=owner, name=name, description=description)
    submit(delivery, "create_experiment", checked(CreateExperiment, raw, {"owner_id": "--owner"}))


@app.command("start-run")
def start_run(
    experiment_id: Annotated[
        int, typer.Argument(metavar="EXPERIMENT_ID", help="The experiment to run.")
    ],
    seed: Annotated[int | None, typer.Option(help="The run's seed, kept with it.")] = None,
    wait: Wait = False,
    as_json: AsJson = False,
    job_id: JobId = None,
    timeout: Timeout = None,
) -> None:
    """Start a run (the result has its id)."""
    from domain.schemas import StartRun
    from worker.cli.inputs import checked
    from worker.cli.submit import Delivery, submit

    delivery = Delivery.of(job_id, wait, as_json, timeout)
    raw = given(experiment_id=experiment_id, seed=seed)
    submit(delivery, "start_run", checked(StartRun, raw, {"experiment_id": "EXPERIMENT_ID"}))


@app.command("finish-run")
def finish_run(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID", help="The run to end.")],
    status: Annotated[RunEnd, typer.Option(help="How it ended.")],
    reason: Annotated[str | None, typer.Option(help="Why (for a failed run).")] = None,
    wait: Wait = False,
    as_json: AsJson = False,
    job_id: JobId = None,
    timeout: Timeout = None,
) -> None:
    """End a run as completed or failed."""
    from domain.schemas import FinishRun
    from worker.cli.inputs import checked
    from worker.cli.submit import Delivery, submit

    delivery = Delivery.of(job_id, wait, as_json, timeout)
    raw = given(run_id=run_id, status=status.value, reason=reason)
    submit(delivery, "finish_run", checked(FinishRun, raw, {"run_id": "RUN_ID"}))


# Negative values (-0.5) must read as VALUE, not as an unknown option.
@app.command("record-metric", context_settings={"ignore_unknown_options": True})
def record_metric(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID", help="The run.")],
    name: Annotated[str, typer.Argument(metavar="NAME", help="Metric name, e.g. loss.")],
    step: Annotated[int, typer.Argument(metavar="STEP", help="Step number (0 or more).")],
    value: Annotated[float, typer.Argument(metavar="VALUE", help="A finite number.")],
    recorded_at: Annotated[
        str | None, typer.Option(help="ISO 8601 time with a zone (default: now).")
    ] = None,
    wait: Wait = False,
    as_json: AsJson = False,
    job_id: JobId = None,
    timeout: Timeout = None,
) -> None:
    """Record one metric point of a run."""
    from domain.schemas import RecordMetric
    from worker.cli.inputs import checked
    from worker.cli.submit import Delivery, submit

    delivery = Delivery.of(job_id, wait, as_json, timeout)
    raw = given(run_id=run_id, name=name, step=step, value=value, recorded_at=recorded_at)
    labels = {"run_id": "RUN_ID", "name": "NAME", "step": "STEP", "value": "VALUE"}
    submit(delivery, "record_metric", checked(RecordMetric, raw, labels))


@app.command("record-metrics")
def record_metrics(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID", help="The run.")],
    file: Annotated[
        str,
        typer.Option(help="JSON lines or CSV (name,step,value[,recorded_at]); - reads stdin."),
    ],
    file_format: Annotated[
        FileFormat | None, typer.Option("--format", help="Default: from the file name.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=50_000, help="Points per job; each batch is one job.")
    ] = 1000,
    wait: Wait = False,
    as_json: AsJson = False,
    job_id: JobId = None,
    timeout: Timeout = None,
) -> None:
    """Record metric points from a file.

    JSON lines or CSV (name,step,value[,recorded_at]). Points go in batch jobs of
    --batch-size; with several batches their ids are <job id>:0, <job id>:1, ...
    """
    from domain.schemas import RecordMetrics
    from worker.cli.inputs import batches, checked, read_points
    from worker.cli.submit import Delivery, submit_batches

    delivery = Delivery.of(job_id, wait, as_json, timeout)
    points = read_points(file, file_format.value if file_format else None)
    # The points are checked already. What is left (the run id, the batch length) is the
    # same for every batch or largest in the first, so checking the first covers them all.
    first, *rest = batches(points, batch_size)
    head = checked(RecordMetrics, {"run_id": run_id, "points": first}, {"run_id": "RUN_ID"})
    payloads = [head, *({"run_id": head["run_id"], "points": batch} for batch in rest)]
    submit_batches(delivery, "record_metrics", payloads)


@app.command("fail-stale-runs")
def fail_stale_runs(
    idle_seconds: Annotated[
        int | None, typer.Option(help="Idle window (default: JOBS_STALE_RUN_SECONDS).")
    ] = None,
    wait: Wait = False,
    as_json: AsJson = False,
    job_id: JobId = None,
    timeout: Timeout = None,
) -> None:
    """Fail runs idle for too long (the cron job, now).

    A run is idle when no metric came for longer than --idle-seconds.
    """
    from domain.schemas import FailStaleRuns
    from worker.cli.connect import load_settings
    from worker.cli.inputs import checked
    from worker.cli.submit import Delivery, submit

    delivery = Delivery.of(job_id, wait, as_json, timeout)
    window = idle_seconds if idle_seconds is not None else load_settings().stale_run_seconds
    submit(delivery, "fail_stale_runs", checked(FailStaleRuns, {"idle_seconds": window}))


@app.command("prune-job-history")
def prune_job_history(
    keep_days: Annotated[
        int | None, typer.Option(help="Days of history to keep (default: JOBS_JOB_HISTORY_DAYS).")
    ] = None,
    wait: Wait = False,
    as_json: AsJson = False,
    job_id: JobId = None,
    timeout: Timeout = None,
) -> None:
    """Prune old job history (the cron job, now).

    Forgets successful jobs older than --keep-days; failures stay.
    """
    from domain.schemas import PruneJobHistory
    from worker.cli.connect import load_settings
    from worker.cli.inputs import checked
    from worker.cli.submit import Delivery, submit

    delivery = Delivery.of(job_id, wait, as_json, timeout)
    days = keep_days if keep_days is not None else load_settings().job_history_days
    submit(delivery, "prune_job_history", checked(PruneJobHistory, {"keep_days": days}))
