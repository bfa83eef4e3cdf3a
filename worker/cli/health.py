"""``dbjobs health``: each worker's own heartbeat, or this host's worker asked directly;
``dbjobs quarantine``: what no worker could serve."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli import output, tables
from worker.cli.options import AsJson
from worker.cli.output import BadInput, CliError
from worker.text import ExitCode

if TYPE_CHECKING:
    from worker.cli.connect import Backends
    from worker.ops.workers import Roster
    from worker.quarantine import QuarantineView
    from worker.settings import Settings

LOCAL_TIMEOUT_S = 3  # a worker's probe answers from its own thread, at once or never


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

    A worker is ready while it beats and says "ready"; "late" when it missed a heartbeat;
    "lost" when it missed three without saying goodbye (stuck or killed): listed until
    dismissed in the console or it beats again.
    Exit code 1 when a worker shown is not ready, or when there is none.
    """
    from worker.cli.connect import run
    from worker.environment import load_settings

    settings = load_settings()
    if local:
        _check_local(settings, as_json)
        return

    async def read(backends: Backends) -> tuple[Roster, int]:
        from worker.ops.workers import read_roster
        from worker.quarantine import read_quarantine

        queue = await backends.queue()
        quarantine = await read_quarantine(queue, settings.queue_name, limit=1)
        return await read_roster(queue, settings.queue_name), quarantine.total

    roster, quarantined = run(read, settings)
    rows = _rows(roster, worker_id)
    if worker_id is not None and not rows:
        raise CliError(f"no worker {worker_id!r} on queue {settings.queue_name!r}")
    ready = bool(rows) and all(row["state"] == "ready" for row in rows)
    _show(rows, ready, as_json, quarantined=quarantined, unreadable=roster.unreadable)
    if not ready:
        raise typer.Exit(ExitCode.FAILED)


def _rows(roster: Roster, worker_id: str | None) -> list[dict[str, Any]]:
    rows = [
        {
            "worker_id": row.worker_id,
            "state": row.state,
            "running": row.running,
            "beat_at": row.beat_at.isoformat(),
            "started_at": row.started_at.isoformat() if row.started_at else None,
        }
        for row in roster.rows()
    ]
    return [row for row in rows if worker_id is None or row["worker_id"] == worker_id]


def _show(
    rows: list[dict[str, Any]], ready: bool, as_json: bool, *, quarantined: int, unreadable: int
) -> None:
    if as_json:
        data = {"ready": ready, "workers": rows}
        output.emit_json({**data, "quarantined": quarantined, "unreadable": unreadable})
        return
    if unreadable:
        entries = "entry" if unreadable == 1 else "entries"
        output.warn(f"{unreadable} heartbeat {entries} skipped: not written by a worker")
    if quarantined:
        entries = "entry is" if quarantined == 1 else "entries are"
        output.warn(f"{quarantined} queue {entries} in quarantine: dbjobs quarantine lists them")
    table = [
        (
            row["worker_id"],
            row["state"],
            "-" if row["running"] is None else row["running"],
            tables.table_time(row["beat_at"]),
        )
        for row in rows
    ]
    columns = ("worker", "state", "running", "last beat")
    tables.show_table("workers", columns, table, empty="no worker is running")


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


def quarantine(
    limit: Annotated[
        int, typer.Option("--limit", min=1, metavar="N", help="Show the latest N.")
    ] = 20,
    clear: Annotated[
        bool, typer.Option("--clear", help="Forget every record (after reading them).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """List what no worker could serve, newest first: queue entries and keys set aside.

    A queue entry whose id is not text (not UTF-8, or with a NUL), or whose keys hold the
    wrong Redis type, is moved here by the first worker to meet it, and never tried again;
    so is a key the queue shares that holds the wrong type (renamed KEY:damaged). The
    latest 1,000 records are kept.
    """
    from worker.cli.connect import run
    from worker.environment import load_settings

    settings = load_settings()

    async def read(backends: Backends) -> tuple[QuarantineView, int | None]:
        from worker.quarantine import clear_quarantine, read_quarantine

        queue = await backends.queue()
        view = await read_quarantine(queue, settings.queue_name, limit)
        cleared = await clear_quarantine(queue, settings.queue_name) if clear else None
        return view, cleared

    view, cleared = run(read, settings)
    records = [asdict(record) for record in view.latest]
    if as_json:
        output.emit_json({"total": view.total, "entries": records, "cleared": cleared})
        return
    table = [(tables.table_time(r["at"]), r["entry"], r["reason"], r["detail"]) for r in records]
    title = f"quarantine: {view.total} (newest first)"
    columns = ("when", "entry", "reason", "why")
    tables.show_table(title, columns, table, empty="the quarantine is empty")
    if cleared is not None:
        output.note(f"forgot {cleared} records")
