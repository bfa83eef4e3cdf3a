"""The terminal chart of ``dbjobs runs metrics``: within the width it is given, whatever the
data, and nothing but numbers and run ids from the data in it."""

from __future__ import annotations

import re

import pytest

from worker.cli.chart import line_chart

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def buckets(count: int, top: int, scale: float) -> list[dict[str, float]]:
    return [
        {"last_step": i * top // max(count - 1, 1), "min": -scale * i, "max": scale * i + 1,
         "last": scale * i / 2}
        for i in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize(
    "series",
    [
        {1: buckets(500, 999_999, 1e6)},
        {1: buckets(1, 0, 0.5)},  # one point: no range on either axis
        {7: buckets(50, 2_147_483_647, 1e-9), 8: buckets(500, 10, 3.0), 9: []},
    ],
    ids=["a-million-steps", "one-point", "three-runs"],
)
def test_the_chart_keeps_to_its_width(series, width):
    drawn = ANSI.sub("", line_chart("loss", series, width=width))
    assert max(len(line) for line in drawn.splitlines()) <= width
    assert "\x1b" not in drawn


def test_several_runs_are_told_apart_and_the_name_is_shown_literally():
    drawn = ANSI.sub(
        "", line_chart("\x1b]0;x\x07", {3: buckets(5, 9, 1), 4: buckets(5, 9, 2)}, width=80)
    )
    assert "o⠤ run 3" in drawn  # each run's marker beside its label: no colour needed
    assert "x⠤ run 4" in drawn
    assert "x" in drawn.split("Legend")[0]  # and on its points
    assert "max" not in drawn  # the min-max band is drawn for a single run only
    assert "\\u001b]0;x\\u0007" in drawn
