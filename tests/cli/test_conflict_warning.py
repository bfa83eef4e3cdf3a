"""``--wait`` says when metric points met another stored value: kept, or overwritten."""

from __future__ import annotations

import pytest

from worker.cli.submit import warn_of_conflicts


def _warned(capsys: pytest.CaptureFixture[str], result: object) -> str:
    warn_of_conflicts(result)
    captured = capsys.readouterr()
    assert captured.out == ""
    return " ".join(captured.err.split())


def test_kept_conflicts_are_named_with_the_way_to_overwrite(capsys):
    result = {
        "conflicts": 2,
        "overwritten": 0,
        "conflicting": [{"name": "loss", "step": 3, "stored": 0.25, "sent": 0.5}],
    }
    assert _warned(capsys, result) == (
        "warning: 2 points not recorded: the step already holds another value, kept "
        "(loss step 3 held 0.25, sent 0.5, ...); --on-conflict overwrite replaces it"
    )


def test_a_submission_s_totals_warn_of_overwritten_points_without_examples(capsys):
    totals = {"inserted": 10, "duplicates": 0, "conflicts": 4, "overwritten": 4}
    assert _warned(capsys, totals) == "warning: 4 points replaced another stored value"


@pytest.mark.parametrize("result", [None, {"conflicts": 0}, {"inserted": 3}, [1, 2]])
def test_nothing_is_said_without_conflicts(capsys, result):
    assert _warned(capsys, result) == ""
