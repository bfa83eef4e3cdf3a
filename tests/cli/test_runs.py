"""``dbjobs runs show`` and ``dbjobs runs metrics``, and the metrics in ``experiments show``."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import insert

from domain.db import utcnow
from domain.models import Metric
from tests.cli.conftest import one_json
from tests.support.db import add_experiment, add_profile, add_run

HOSTILE = "\x1b[31mred[/] [bold]x\u202e"
SHOWN = "\\u001b[31mred[/] [bold]x\\u202e"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
async def tracked(uow_factory, session_factory):
    """An experiment with three runs: the first has 1,000 'loss' points (steps 0, 2, 4...)
    and 3 of a hostile name, the second 10 'loss' points, the third none."""
    owner = await add_profile(uow_factory)
    experiment = await add_experiment(uow_factory, owner.id)
    runs = [await add_run(uow_factory, experiment.id) for _ in range(3)]
    first, second = runs[0].id, runs[1].id
    rows = [(first, "loss", 2 * s, 1.0 / (s + 1)) for s in range(1000)]
    rows += [(first, HOSTILE, s, float(s)) for s in range(3)]
    rows += [(second, "loss", s, 10.0 - s) for s in range(10)]
    async with session_factory() as session:
        await session.execute(
            insert(Metric),
            [
                {"run_id": r, "name": n, "step": s, "value": v, "recorded_at": utcnow()}
                for r, n, s, v in rows
            ],
        )
        await session.commit()
    return {"experiment": experiment.id, "runs": [run.id for run in runs]}


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


async def test_runs_show_summarises_each_metric(cli, tracked):
    run_id = tracked["runs"][0]
    data = one_json(await cli("runs", "show", str(run_id), "--json"))
    assert (data["id"], data["points"]) == (run_id, 1003)
    assert [m["name"] for m in data["metrics"]] == sorted([HOSTILE, "loss"])
    loss = next(m for m in data["metrics"] if m["name"] == "loss")
    assert loss == {
        "name": "loss",
        "points": 1000,
        "first_step": 0,
        "last_step": 1998,
        "last": 1 / 1000,
        "min": 1 / 1000,
        "max": 1.0,
    }
    table = await cli("runs", "show", str(run_id), COLUMNS="80")
    assert table.exit_code == 0
    assert widest(table.stdout) <= 80
    assert "1,000" in table.stdout
    assert SHOWN in table.stdout
    assert "\x1b" not in table.stdout


async def test_runs_metrics_is_downsampled_by_default(cli, tracked):
    run_id = tracked["runs"][0]
    data = one_json(await cli("runs", "metrics", str(run_id), "--name", "loss", "--json"))
    (series,) = data["series"]
    assert (data["buckets"], len(series["buckets"])) == (500, 500)
    assert all(b["points"] == 2 for b in series["buckets"])  # 1,000 points, every other step
    first = series["buckets"][0]
    assert first == {
        "first_step": 0,
        "last_step": 2,
        "points": 2,
        "min": 0.5,
        "max": 1.0,
        "mean": 0.75,
        "last": 0.5,
    }
    few = await cli("runs", "metrics", str(run_id), "--name", "loss", "--points", "4", "--csv")
    rows = list(csv.DictReader(io.StringIO(few.stdout)))
    assert [(r["first_step"], r["last_step"], r["points"]) for r in rows] == [
        ("0", "498", "250"),
        ("500", "998", "250"),
        ("1000", "1498", "250"),
        ("1500", "1998", "250"),
    ]
    assert float(rows[0]["max"]) == 1.0
    for row in rows:  # stored values as stored, means without float noise
        assert row["mean"] == repr(float(f"{float(row['mean']):.15g}"))
        assert row["min"] == repr(float(row["min"]))


async def test_piped_it_is_a_table_that_fits_80_columns(cli, tracked):
    run_id = tracked["runs"][0]
    shown = await cli(
        "runs", "metrics", str(run_id), "--name", "loss", "--points", "5", COLUMNS="80"
    )
    assert shown.exit_code == 0
    assert widest(shown.stdout) <= 80
    assert "loss: 5 bucket(s)" in shown.stdout
    assert "0-398" in shown.stdout
    assert "1600-1998" in shown.stdout


async def test_on_a_terminal_it_is_a_chart(cli, tracked):
    run_id = tracked["runs"][0]
    shown = await cli(
        "runs", "metrics", str(run_id), "--name", HOSTILE, COLUMNS="80", TTY_COMPATIBLE="1"
    )
    assert shown.exit_code == 0
    text = ANSI.sub("", shown.stdout)
    assert widest(text) <= 80
    assert "⠀" in text  # braille dots
    assert f"{SHOWN}, run {run_id}: 3 points, steps 0-2, 3 of 500 buckets" in text
    assert "last 2, min 0, max 2" in text
    assert "\x1b]" not in shown.stdout
    assert "\u202e" not in shown.stdout


async def test_runs_compared_on_one_metric(cli, tracked):
    first, second, silent = tracked["runs"]
    args = ("runs", "metrics", str(second), str(first), str(silent), "--name", "loss")
    data = one_json(await cli(*args, "--points", "2", "--json"))
    assert [s["run_id"] for s in data["series"]] == [second, first, silent]
    # Shared spans over steps 0-1998: the second run's ten points all fall in the first.
    assert [b["points"] for b in data["series"][0]["buckets"]] == [10]
    assert [b["points"] for b in data["series"][1]["buckets"]] == [500, 500]
    assert data["series"][2]["buckets"] == []
    table = await cli(*args, "--points", "2", COLUMNS="80")
    assert widest(table.stdout) <= 80
    assert "run" in table.stdout
    chart = await cli(*args, COLUMNS="80", TTY_COMPATIBLE="1")
    assert f"run {silent}: no points" in ANSI.sub("", chart.stdout)


async def test_all_streams_every_point(cli, tracked):
    first, second, _ = tracked["runs"]
    listed = await cli("runs", "metrics", str(first), str(second), "--name", "loss", "--all")
    assert listed.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert [(int(r["run_id"]), int(r["step"])) for r in rows] == [
        *((first, 2 * s) for s in range(1000)),
        *((second, s) for s in range(10)),
    ]
    assert float(rows[1]["value"]) == 0.5
    data = one_json(await cli("runs", "metrics", str(first), "--name", "loss", "--all", "--json"))
    assert data["name"] == "loss"
    assert [p["step"] for p in data["points"]] == [2 * s for s in range(1000)]
    assert set(data["points"][0]) == {"run_id", "step", "value", "recorded_at"}


async def test_all_on_an_empty_metric_is_a_header_or_an_empty_list(cli, tracked):
    silent = str(tracked["runs"][2])
    listed = await cli("runs", "metrics", silent, "--name", "loss", "--all")
    assert listed.stdout == "run_id,step,value,recorded_at\n"
    data = one_json(await cli("runs", "metrics", silent, "--name", "loss", "--all", "--json"))
    assert data == {"name": "loss", "points": []}


async def test_a_metric_with_no_points_says_where_to_look(cli, tracked):
    shown = await cli("runs", "metrics", str(tracked["runs"][0]), "--name", "lss")
    assert shown.exit_code == 0
    assert "no points named 'lss'" in shown.stdout
    assert "dbjobs runs show RUN" in shown.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--points", "3", "--all"], 2, "--points and --all: choose one"),
        (["--json", "--csv"], 2, "--json and --csv: choose one"),
        (["--points", "0"], 2, "--points: Input should be greater than or equal to 1"),
        (["--points", "10001"], 2, "--points: Input should be less than or equal to 10000"),
    ],
)
async def test_bad_options_are_refused(cli, tracked, args, code, message):
    result = await cli("runs", "metrics", str(tracked["runs"][0]), "--name", "loss", *args)
    assert result.exit_code == code
    assert message in result.stderr


async def test_more_buckets_than_one_read_may_return_are_refused_as_the_api_refuses(cli, tracked):
    runs = [str(run) for run in tracked["runs"]]
    result = await cli("runs", "metrics", *runs, "--name", "loss", "--points", "10000")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --points: at most 6,666 for 3 runs (run_ids × buckets is at most 20,000 in "
        "one read)"
    )
    shared = await cli("runs", "metrics", *runs, "--name", "loss", "--points", "6666", "--json")
    assert shared.exit_code == 0


@pytest.mark.parametrize("extra", [[], ["--all"]])
async def test_an_unknown_run_is_one_json_error(cli, tracked, extra):
    result = await cli(
        "runs", "metrics", str(tracked["runs"][0]), "999", "--name", "loss", "--json", *extra
    )
    assert result.exit_code == 1
    assert one_json(result)["error"]["message"] == "run 999 not found"
    shown = await cli("runs", "show", "999")
    assert (shown.exit_code, shown.stderr.strip()) == (1, "error: run 999 not found")


async def test_experiments_show_gives_each_runs_points_and_last_values(cli, tracked):
    first, second, silent = tracked["runs"]
    data = one_json(await cli("experiments", "show", str(tracked["experiment"]), "--json"))
    assert [(r["id"], r["points"]) for r in data["runs"]] == [
        (first, 1003),
        (second, 10),
        (silent, 0),
    ]
    assert [(m["name"], m["last"]) for m in data["runs"][1]["metrics"]] == [("loss", 1.0)]
    table = await cli("experiments", "show", str(tracked["experiment"]), COLUMNS="80")
    assert widest(table.stdout) <= 80
    assert "their metrics: 1,013 point(s)" in table.stdout
    assert SHOWN in table.stdout
    json.dumps(data)  # plain JSON all the way down
