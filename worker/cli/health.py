"""``jobs health``: each worker's own heartbeat, or this host's worker asked directly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli import output
from worker.cli.options import AsJson
from worker.cli.output import BadInput, CliError
from worker.text import ExitCode

if TYPE_CHECKING:
    from worker.cli.connect import Backends
    from worker.runtime.heartbeats import Roster
    from worker.settings import Settings

LOCAL_TIMEOUT_S = 3  # a worker's probe answers from its own thread, at once or never
SILENT = "silent"  # a worker whose beat stopped without a goodbye: stuck or killed


def health(
    worker_id: Annotated[
        str | None,
        typer.Option("--worker", metavar="ID", help="Only this worker (host:pid, as listed)."),
    ] = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Ask this host's worker itself, on 127.0.0.1:JOBS_METRICS_PORT/readyz "
            "(for container healthchecks).",
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Show each worker of the queue: its state, jobs running and last heartbeat.

    A worker is ready while it beats and says "ready"; "silent" is one whose heartbeat
    stopped without its saying goodbye (stuck or killed) in the last few minutes.
    Exit code 1 when a worker shown is not ready, or when there is none.
    """
    from worker.cli.config import load_settings
    from worker.cli.connect import run

    settings = load_settings()
    if local:
        _check_local(settings, as_json)
        return

    async def read(backends: Backends) -> Roster:
        from worker.runtime.heartbeats import read_roster

        return await read_roster(await backends.queue(), settings.queue_name)

    rows = _rows(run(read, settings), worker_id)
    if worker_id is not None and not rows:
        raise CliError(f"no worker {worker_id!r} on queue {settings.queue_name!r}")
    ready = bool(rows) and all(row["state"] == "ready" for row in rows)
    _show(rows, ready, as_json)
    if not ready:
        raise typer.Exit(ExitCode.FAILED)


def _rows(roster: Roster, worker_id: str | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {
            "worker_id": beat.worker_id,
            "state": beat.state,
            "running": beat.running,
            "beat_at": beat.beat_at.isoformat(),
            "started_at": beat.started_at.isoformat(),
        }
        for beat in roster.live
    ]
    rows += [
        {
            "worker_id": lost.worker_id,
            "state": SILENT,
            "running": None,
            "beat_at": lost.last_beat_at.isoformat(),
            "started_at": None,
        }
        for lost in roster.lost
    ]
    return [row for row in rows if worker_id is None or row["worker_id"] == worker_id]


def _show(rows: list[dict[str, Any]], ready: bool, as_json: bool) -> None:
    if as_json:
        output.emit_json({"ready": ready, "workers": rows})
        return
    table = [
        (
            row["worker_id"],
            row["state"],
            "-" if row["running"] is None else row["running"],
            output.table_time(row["beat_at"]),
        )
        for row in rows
    ]
    columns = ("worker", "state", "running", "last beat")
    output.show_table("workers", columns, table, empty="no worker is running")


def _check_local(settings: Settings, as_json: bool) -> None:
    import urllib.error
    import urllib.request

    if not settings.metrics_port:
        raise BadInput("--local asks the worker's exporter: set JOBS_METRICS_PORT")
    url = f"http://127.0.0.1:{settings.metrics_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=LOCAL_TIMEOUT_S) as answer:
            ready, reason = True, answer.read().decode(errors="replace").strip()
    except urllib.error.HTTPError as refused:
        ready, reason = False, refused.read().decode(errors="replace").strip()
    except OSError as problem:  # nothing listens, or it does not answer: not alive
        ready, reason = False, f"no answer from {url}: {getattr(problem, 'reason', problem)}"
    if as_json:
        output.emit_json({"ready": ready, "reason": reason})
    else:
        output.say(f"{'ready' if ready else 'not ready'}: {reason}")
    if not ready:
        raise typer.Exit(ExitCode.FAILED)
