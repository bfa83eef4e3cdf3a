"""``dbjobs runs``: a run's summary and a metric's history, through the domain's read use
cases. Downsampled by default (in SQL); ``--all`` streams every point, a page at a time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli import output, tables
from worker.cli.options import AsJson
from worker.cli.output import BadInput
from worker.cli.tables import Listing, number

if TYPE_CHECKING:
    from worker.cli.connect import Backends

runs_app = output.command_group("Read runs and their metrics.")

BUCKET_FIELDS = ("run_id", "first_step", "last_step", "points", "min", "max", "mean", "last")
POINT_FIELDS = ("run_id", "step", "value", "recorded_at")
LABELS = {"run_ids": "RUN", "run_id": "RUN", "buckets": "--points"}


def _metric_row(m: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        m["name"],
        f"{m['points']:,}",
        _steps(m),
        *(number(m[k]) for k in ("last", "min", "max")),
    )


METRIC_COLUMNS = ("metric", "points", "steps", "last", "min", "max")
NO_METRIC = "no metric recorded yet"
METRICS = Listing("metrics", "metric(s)", METRIC_COLUMNS, _metric_row, NO_METRIC)
RUN_METRICS = Listing(  # several runs' metrics, the run of each in a first column
    "metrics",
    "metric(s)",
    ("run", *METRIC_COLUMNS),
    lambda m: (m["run_id"], *_metric_row(m)),
    NO_METRIC,
)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="The run id.")],
    as_json: AsJson = False,
) -> None:
    """Show a run and each of its metrics: points, steps, last value, min and max."""
    from domain.services import run_summary
    from worker.cli.connect import read

    output.answer(read(run_summary, run_id), as_json, _show_run)


def _show_run(summary: dict[str, Any]) -> None:
    metrics, count = summary.pop("metrics"), summary.pop("metric_count")
    tables.show_fields(f"run {summary['id']}", summary)
    cut = count != len(metrics)
    METRICS.table(
        metrics, f"{len(metrics):,} of {count:,} metrics, the first by name" if cut else None
    )


@runs_app.command("metrics")
def runs_metrics(
    run_ids: Annotated[
        list[int], typer.Argument(metavar="RUN", help="The run, or several to compare.")
    ],
    name: Annotated[str, typer.Option(metavar="NAME", help="The metric, e.g. loss.")],
    points: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="Downsample to at most N buckets (default 500, fewer for many runs)."
        ),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every point, streamed (CSV).")] = False,
    as_json: AsJson = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV on stdout.")] = False,
) -> None:
    """A metric's history: each bucket's min, max, mean and last value, charted on a
    terminal, a table when piped; --all prints every point."""
    from domain.metric_queries import MetricHistoryQuery
    from domain.services import metric_history
    from worker.cli.connect import read
    from worker.cli.inputs import validated

    if as_json and as_csv:
        raise BadInput("--json and --csv: choose one")
    if all_:
        if points is not None:
            raise BadInput("--points and --all: choose one")
        _stream_points(run_ids, name, as_json=as_json)
        return
    raw = {"run_ids": run_ids, "name": name, "buckets": points}
    history = read(metric_history, validated(MetricHistoryQuery, raw, LABELS))
    if as_json:
        output.emit_json(history)
    elif as_csv:
        rows = [
            (s["run_id"], *(_computed(b[k]) if k == "mean" else b[k] for k in BUCKET_FIELDS[1:]))
            for s in history["series"]
            for b in s["buckets"]
        ]
        output.emit_csv(rows, BUCKET_FIELDS)
    else:
        _show_history(history)


def _show_history(history: dict[str, Any]) -> None:
    series = {s["run_id"]: s["buckets"] for s in history["series"]}
    name = history["name"]
    if not any(series.values()):
        runs = ", ".join(map(str, series))
        output.say(f"no points named {name!r} in run {runs}: `dbjobs runs show RUN` lists them")
        return
    console = output.stdout()
    if console.is_terminal:
        from rich.text import Text

        from worker.cli.chart import line_chart

        console.print(Text.from_ansi(line_chart(name, series, width=min(console.width, 100))))
        for run_id, buckets in series.items():
            output.say(_caption(name, run_id, buckets, history["buckets"]))
        output.note("--csv or --json for the numbers; piped, a table")
        return
    several = len(series) > 1
    columns = ("run", "steps", "points", "min", "max", "mean", "last")[0 if several else 1 :]
    rows = [
        (
            *((run_id,) if several else ()),
            _steps(b),
            f"{b['points']:,}",
            *(number(b[key]) for key in ("min", "max", "mean", "last")),
        )
        for run_id, buckets in series.items()
        for b in buckets
    ]
    tables.show_table(f"{name}: {len(rows)} bucket(s)", columns, rows)


def _caption(name: str, run_id: int, buckets: list[dict[str, Any]], asked: int) -> str:
    if not buckets:
        return f"{name}, run {run_id}: no points"
    count = sum(b["points"] for b in buckets)
    low, high = min(b["min"] for b in buckets), max(b["max"] for b in buckets)
    return (
        f"{name}, run {run_id}: {count:,} points, steps {_steps(buckets[0], buckets[-1])}, "
        f"{len(buckets)} of {asked} buckets\n  last {number(buckets[-1]['last'])}, "
        f"min {number(low)}, max {number(high)}"
    )


def _steps(first: Mapping[str, Any], last: Mapping[str, Any] | None = None) -> str:
    low, high = first["first_step"], (last or first)["last_step"]
    return f"{low}" if low == high else f"{low}-{high}"


def _stream_points(run_ids: list[int], name: str, *, as_json: bool) -> None:
    """Every point, printed as it is read (``worker.ops.metric_export``)."""
    from domain.metric_queries import MetricPageQuery
    from worker.cli.connect import run
    from worker.cli.inputs import validated
    from worker.ops.metric_export import every_point

    queries = [validated(MetricPageQuery, {"run_id": r, "name": name}, LABELS) for r in run_ids]

    async def stream(backends: Backends) -> None:
        pages = every_point(backends, queries)
        first = await anext(pages)  # every run found: now the output can start
        sink = _PointSink(name, as_json=as_json)
        sink.add(*first)
        async for run_id, points in pages:
            sink.add(run_id, points)
        sink.close()

    run(stream)


class _PointSink:
    """Points as they are read: CSV rows, or the items of one JSON object."""

    def __init__(self, name: str, *, as_json: bool) -> None:
        self._json = output.JsonList({"name": name}, "points") if as_json else None
        if self._json is None:
            output.emit_csv([], POINT_FIELDS)

    def add(self, run_id: int, points: list[dict[str, Any]]) -> None:
        if self._json is not None:
            self._json.add({"run_id": run_id, **p} for p in points)
        else:
            output.emit_csv((run_id, p["step"], p["value"], p["recorded_at"]) for p in points)

    def close(self) -> None:
        if self._json is not None:
            self._json.close()


def _computed(mean: float | None) -> float | None:
    """A mean to 15 significant digits: the sum's rounding noise left out (0.87935, not
    0.8793500000000001). Stored values are printed as stored: the shortest text of each."""
    return None if mean is None else float(f"{mean:.15g}")
