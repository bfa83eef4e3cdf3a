"""The options and arguments several commands take, each defined once (as streaq's CLI
shares its ``Annotated`` options): the same name, help and checks wherever they appear."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from worker.lanes import LANES, Lane, as_lane, lane_problem

AsJson = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
JobIdArgument = Annotated[str, typer.Argument(metavar="JOB_ID", help="The job id.")]
JobId = Annotated[
    str | None,
    typer.Option(
        "--job-id", help="Job id (default: a new uuid4 hex). An id already used enqueues nothing."
    ),
]
Wait = Annotated[
    bool, typer.Option("--wait", help="Wait for the outcome and print it; exit 1 if it failed.")
]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0,
        metavar="SECONDS",
        help="With --wait: stop waiting after SECONDS (exit 3); the job goes on.",
    ),
]


def _lane_option(help_text: str) -> Any:
    return typer.Option(
        "--lane",
        parser=lambda given: _lane(given),
        metavar="LANE",
        help=help_text + ", ".join(LANES) + ".",
        show_default=False,
    )


LaneOption = Annotated[str | None, _lane_option("The lane it waits in (default: its job's): ")]
QueueLane = Annotated[str | None, _lane_option("Only the queue's jobs in this lane: ")]


def _lane(given: str) -> str:
    if (problem := lane_problem(given)) is not None:
        raise typer.BadParameter(problem)
    return given


Limit = Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")]
# A limit the query's schema checks, naming --limit in its refusal as it names the others.
QueryLimit = Annotated[int, typer.Option(help="At most this many (1-1000).")]

# The options every enqueue takes, by name: (annotation, default).
DELIVERY: dict[str, tuple[Any, Any]] = {
    "wait": (Wait, False),
    "as_json": (AsJson, False),
    "job_id": (JobId, None),
    "timeout": (Timeout, None),
    "lane": (LaneOption, None),
}


@dataclass(frozen=True)
class Delivery:
    """The options every ``dbjobs enqueue`` command takes (and ``dbjobs retry``), together."""

    job_id: str
    wait: bool = False
    as_json: bool = False
    timeout: float | None = None
    lane: Lane | None = None  # None: the job's own

    @classmethod
    def of(
        cls,
        *,
        job_id: str | None,
        wait: bool,
        as_json: bool,
        timeout: float | None,
        lane: str | None = None,
    ) -> Delivery:
        from worker.cli.inputs import new_job_id

        return cls(new_job_id(job_id), wait, as_json, timeout, as_lane(lane) if lane else None)
