"""A producer checks a file of metric points without the CLI: from any binary stream, its
problems told without the CLI's words, the stream left open for its owner."""

from __future__ import annotations

import io

import orjson
import pytest

from worker.ops.point_checks import batch_payloads, checked_batches
from worker.ops.point_files import BadPointFile, format_of


def test_a_stream_of_csv_is_checked_whole_and_left_open():
    stream = io.BytesIO(b"name,step,value\r\nloss,0,1\r\nloss,1,nan\r\nloss,2\r\n")
    with pytest.raises(BadPointFile) as refused, checked_batches(stream, "csv", 10):
        pass
    assert refused.value.message == (
        "2 bad lines, nothing enqueued:\n"
        "  line 3: value: Input should be a finite number\n"
        "  line 4: fewer values than columns"
    )
    assert not stream.closed


def test_checked_batches_become_payloads_checked_once():
    lines = b"".join(b'{"name": "loss", "step": %d, "value": 0.5}\n' % step for step in range(5))
    seen = []

    def check(raw: dict) -> dict:
        seen.append(raw)
        return {"run_id": 7, "points": raw["points"]}

    with checked_batches(io.BytesIO(lines), "jsonl", 2) as batches:
        payloads = [
            orjson.loads(orjson.dumps(p)) for p in batch_payloads(batches, {"run_id": "7"}, check)
        ]
    assert [len(payload["points"]) for payload in payloads] == [2, 2, 1]
    assert {payload["run_id"] for payload in payloads} == {7}
    assert seen == [{"run_id": "7", "points": payloads[0]["points"]}]


def test_the_format_comes_from_the_name_or_not_at_all():
    assert format_of("points.NDJSON") == "jsonl"
    assert format_of("dir.csv/points") is None
