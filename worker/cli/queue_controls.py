"""``dbjobs pause``, ``dbjobs resume``, ``dbjobs limit`` and ``dbjobs lanes``: the queue's controls
(``worker.ops.controls``), cluster-wide."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from worker.cli import output, tables
from worker.cli.options import AsJson

if TYPE_CHECKING:
    from worker.cli.connect import Backends
    from worker.ops.controls import Controls
    from worker.ops.queue_state import QueueState

TargetArgument = Annotated[
    str,
    typer.Argument(
        metavar="LANE_OR_JOB",
        help="A lane (interactive, maintenance, bulk) or a job (generate-profiles-chunk).",
    ),
]


def pause(target: TargetArgument, as_json: AsJson = False) -> None:
    """Pause a lane or a kind of job on every worker: its queued jobs stay queued, the
    running ones finish. `resume` undoes it."""
    _switch(target, paused=True, as_json=as_json)


def resume(target: TargetArgument, as_json: AsJson = False) -> None:
    """Resume a paused lane or kind of job."""
    _switch(target, paused=False, as_json=as_json)


def _switch(given: str, *, paused: bool, as_json: bool) -> None:
    from worker.cli.connect import run
    from worker.ops import controls

    async def switch(backends: Backends) -> bool:
        target = controls.target_of(given)
        act = controls.pause if paused else controls.resume
        return await act(await backends.queue(), backends.settings.queue_name, target)

    changed = run(switch)
    state = "paused" if paused else "running"
    if as_json:
        output.emit_json({"target": given, "state": state, "changed": changed})
    else:
        output.say(f"{given}: {state}" + ("" if changed else f" (it was {state} already)"))


def limit(
    job: Annotated[str, typer.Argument(metavar="JOB", help="The job, e.g. generate-profiles.")],
    cap: Annotated[
        int | None,
        typer.Argument(metavar="N", min=0, help="At most N running at once, on all workers."),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Back to the registry's cap.")] = False,
    as_json: AsJson = False,
) -> None:
    """Cap how many jobs of a kind run at once across all workers (0 holds them all)."""
    from worker.cli.connect import run
    from worker.cli.output import BadInput
    from worker.ops import controls

    if (cap is None) == (not clear):
        raise BadInput("give either N or --clear")

    async def set_cap(backends: Backends) -> int | None:
        name = controls.job_named(job)
        queue, queue_name = await backends.queue(), backends.settings.queue_name
        await controls.set_limit(queue, queue_name, name, None if clear else cap)
        return (await controls.read_controls(queue, queue_name)).limits.get(name)

    now = run(set_cap)
    if as_json:
        output.emit_json({"job": job, "limit": now})
    else:
        output.say(f"{job}: " + (f"at most {now} at once" if now is not None else "no cap"))


def lanes(as_json: AsJson = False) -> None:
    """Show each lane's jobs, what is paused and the caps in force."""
    from worker.cli.connect import run

    async def read(backends: Backends) -> tuple[QueueState, Controls]:
        from worker.ops.controls import read_controls
        from worker.ops.queue_state import read_queue

        queue, queue_name = await backends.queue(), backends.settings.queue_name
        return await read_queue(queue, queue_name), await read_controls(queue, queue_name)

    state, controls = run(read)
    rows = [
        (
            lane.lane,
            lane.due,
            lane.deferred,
            "paused" if f"lane:{lane.lane}" in controls.paused else "",
        )
        for lane in state.lanes
    ]
    kinds = sorted(
        member.split(":", 1)[1] for member in controls.paused if member.startswith("job:")
    )
    if as_json:
        lanes_json = [
            dict(zip(("lane", "due", "deferred", "state"), row, strict=True)) for row in rows
        ]
        output.emit_json({"lanes": lanes_json, "paused_jobs": kinds, "limits": controls.limits})
        return
    tables.show_table("lanes", ("lane", "due", "deferred", "state"), rows)
    output.say("paused jobs: " + (", ".join(kinds) or "none"))
    caps = ", ".join(f"{name} {cap}" for name, cap in sorted(controls.limits.items()))
    output.say("caps: " + (caps or "none"))
