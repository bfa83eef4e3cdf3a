"""The options and arguments several commands take, each defined once (as streaq's CLI
shares its ``Annotated`` options): the same name, help and checks wherever they appear."""

from __future__ import annotations

from typing import Annotated

import typer

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
        help="With --wait: stop waiting after SECONDS (exit 3); the job goes on.",
    ),
]
Limit = Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")]
# A limit the query's schema checks, naming --limit in its refusal as it names the others.
QueryLimit = Annotated[int, typer.Option(help="At most this many (1-1000).")]
