"""A submission's results added up: the counts summed, the conflicting points named as one
batch's result names them (``record-metrics`` answers like ``record-metric``)."""

from __future__ import annotations

from domain.views import MAX_CONFLICTS_NAMED, add_up


def conflict(step: int) -> dict[str, object]:
    return {"name": "loss", "step": step, "stored": 0.25, "sent": 0.5}


def test_counts_are_summed_and_conflicting_points_named_up_to_the_bound():
    batches = [
        {"run_id": 1, "inserted": 3, "conflicts": 2, "conflicting": [conflict(1), conflict(2)]},
        {"run_id": 1, "inserted": 1, "conflicts": 0, "conflicting": []},
        {
            "run_id": 1,
            "inserted": 0,
            "conflicts": 9,
            "conflicting": [conflict(s) for s in range(9)],
        },
    ]
    totals = add_up(batches)
    assert (totals["inserted"], totals["conflicts"]) == (4, 11)
    assert "run_id" not in totals
    assert len(totals["conflicting"]) == MAX_CONFLICTS_NAMED
    assert totals["conflicting"][:2] == [conflict(1), conflict(2)]


def test_a_batch_without_conflicts_still_says_so():
    assert add_up([{"inserted": 2, "conflicting": []}])["conflicting"] == []
