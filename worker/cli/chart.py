"""A downsampled metric as a terminal chart: braille dots, drawn by plotille.

One run: its buckets' min-max band, dim, under the line of each bucket's last value (what
W&B draws). Several runs: one line each, in turn through a few colours and markers (o, x,
+...: the legend reads without colour). Everything the
chart shows is numbers and run ids: no stored text reaches the terminal through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from worker.text import printable

COLOURS = ("bright_cyan", "bright_magenta", "bright_yellow", "bright_green", "bright_red")
BAND = "bright_black"
# Each run's points also drawn as a marker, shown in the legend: told apart without colour.
MARKERS = ("o", "x", "+", "*", "#")


def line_chart(
    name: str, series: Mapping[int, Sequence[Mapping[str, Any]]], *, width: int, height: int = 15
) -> str:
    """The chart as text with ANSI colours, at most ``width`` columns wide; ``series`` maps
    run ids to their buckets (not all empty)."""
    import plotille  # type: ignore[import-untyped]  # plotille ships no type information

    figure = plotille.Figure()
    # plotille's frame (y labels, axes, the x axis's arrow and label) takes 23 columns.
    figure.width, figure.height = max(width - 23, 10), height
    figure.color_mode = "names"
    figure.x_label, figure.y_label = "step", printable(name)[:40]
    figure.x_ticks_fkt = lambda low, _high: f"{low:,.0f}"
    figure.y_ticks_fkt = lambda low, _high: f"{low:.4g}"
    drawn = {run_id: buckets for run_id, buckets in series.items() if buckets}
    steps = [b["last_step"] for buckets in drawn.values() for b in buckets]
    values = [b[k] for buckets in drawn.values() for b in buckets for k in ("min", "max")]
    figure.set_x_limits(min_=min(steps), max_=max(steps) if len(set(steps)) > 1 else None)
    figure.set_y_limits(min_=min(values), max_=max(values) if len(set(values)) > 1 else None)
    for number, (run_id, buckets) in enumerate(drawn.items()):
        xs = [b["last_step"] for b in buckets]
        if len(drawn) == 1:
            figure.plot(xs, [b["max"] for b in buckets], lc=BAND, label="max")
            figure.plot(xs, [b["min"] for b in buckets], lc=BAND, label="min")
        label = f"run {run_id}" + (", last of each bucket" if len(drawn) == 1 else "")
        colour, marker = COLOURS[number % len(COLOURS)], MARKERS[number % len(MARKERS)]
        figure.plot(xs, [b["last"] for b in buckets], lc=colour, label=label, marker=marker)
    chart: str = figure.show(legend=True)
    return chart
