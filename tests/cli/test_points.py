"""Metric files: read, checked in full before anything is sent, in bounded memory."""

from __future__ import annotations

import tracemalloc

import orjson
import pytest

from worker.cli.inputs import checked_batches
from worker.cli.output import BadInput


def read_points(source: str, file_format: str | None = None, batch_size: int = 1000) -> list:
    with checked_batches(source, file_format, batch_size) as batches:
        return [point for batch in batches for point in orjson.loads(batch)]


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_json_lines_are_read_with_optional_timestamps(tmp_path):
    source = write(
        tmp_path,
        "points.jsonl",
        '{"name": "loss", "step": 0, "value": 1.5}\n\n'
        '{"name": "loss", "step": 1, "value": -2, "recorded_at": "2024-05-01T10:00:00+02:00"}\n',
    )
    assert read_points(source) == [
        {"name": "loss", "step": 0, "value": 1.5},
        {"name": "loss", "step": 1, "value": -2.0, "recorded_at": "2024-05-01T10:00:00+02:00"},
    ]


def test_csv_is_read_by_header_with_blank_timestamps_left_out(tmp_path):
    source = write(
        tmp_path,
        "points.csv",
        "step, name ,value,recorded_at\n3,acc,0.5,\n4,acc,0.75,2024-05-01T08:00:00Z\n",
    )
    assert read_points(source) == [
        {"name": "acc", "step": 3, "value": 0.5},
        {"name": "acc", "step": 4, "value": 0.75, "recorded_at": "2024-05-01T08:00:00Z"},
    ]


def test_bad_json_lines_are_all_reported_by_line_number(tmp_path):
    source = write(
        tmp_path,
        "points.jsonl",
        "\n".join(
            [
                '{"name": "loss", "step": 0, "value": 1}',
                '{"name": "loss", "step": 1, "value": NaN}',
                '{"name": "loss", "step": 2, "value": Infinity}',
                "{not json",
                "[1, 2, 3]",
                '{"name": "loss", "value": 1}',
                '{"name": "loss", "step": 5, "value": 1, "unit": "s"}',
                '{"name": "loss", "step": -1, "value": 1}',
                '{"name": "loss", "step": 7, "value": 1, "recorded_at": "2024-01-01T00:00:00"}',
            ]
        ),
    )
    with pytest.raises(BadInput) as refused:
        read_points(source)
    message = refused.value.message
    assert "8 bad lines, nothing enqueued" in message
    for expected in (
        "line 2: value: Input should be a finite number",
        "line 3: value: Input should be a finite number",
        "line 4: not valid JSON",
        "line 5: expected one JSON object per line",
        "line 6: step: required",
        "line 7: unit: unknown field",
        "line 8: step: Input should be greater than or equal to 0",
        "line 9: recorded_at: Input should have timezone info",
    ):
        assert expected in message
    assert "line 1:" not in message


def test_bad_csv_rows_are_reported_by_line_number(tmp_path):
    source = write(
        tmp_path,
        "points.csv",
        "name,step,value\nloss,0,1\nloss,1,nan\nloss,2\nloss,3,1,extra\nloss,four,1\n,5,1\n",
    )
    with pytest.raises(BadInput) as refused:
        read_points(source)
    message = refused.value.message
    assert "line 3: value: Input should be a finite number" in message
    assert "line 4: fewer values than columns" in message
    assert "line 5: more values than columns" in message
    assert "line 6: step: Input should be a valid integer" in message
    assert "line 7: name: String should have at least 1 character" in message


def test_only_the_first_problems_are_listed(tmp_path):
    source = write(tmp_path, "points.jsonl", '{"name": "x", "step": -1, "value": 0}\n' * 25)
    with pytest.raises(BadInput, match=r"25 bad lines(.|\n)*\.\.\. and 15 more"):
        read_points(source)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("name,value", "missing: step"),
        ("name,step,value,unit", "unknown: unit"),
        ("name,step,value,value", "the CSV header must be"),
    ],
)
def test_a_csv_header_must_name_the_point_fields(tmp_path, header, problem):
    source = write(tmp_path, "points.csv", f"{header}\nloss,1,2\n")
    with pytest.raises(BadInput, match=problem):
        read_points(source)


def test_files_that_cannot_be_read_are_refused(tmp_path):
    with pytest.raises(BadInput, match=r"(?i)no such file"):
        read_points(str(tmp_path / "missing.jsonl"))
    with pytest.raises(BadInput, match="no metric points"):
        read_points(write(tmp_path, "empty.csv", ""))
    with pytest.raises(BadInput, match="add --format"):
        read_points(write(tmp_path, "points.txt", "name,step,value\n"))
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("name,step,value\nperte é,1,2\n".encode("latin-1"))
    with pytest.raises(BadInput, match="not UTF-8"):
        read_points(str(latin1))


def test_the_format_option_wins_over_the_file_name(tmp_path):
    source = write(tmp_path, "points.txt", "name,step,value\nloss,1,2\n")
    assert read_points(source, "csv") == [{"name": "loss", "step": 1, "value": 2.0}]


def test_lines_are_numbered_as_an_editor_numbers_them_across_read_chunks(tmp_path, monkeypatch):
    import worker.ops.point_files

    good = '{"name": "loss", "step": %d, "value": 1}'
    text = (
        "\r\n".join([good % 0, "", good % 1])
        + "\r"
        + good % 2
        + "\n\n"
        + '{"step": 3, "value": 1}\r\n'
    )
    bad, fine = tmp_path / "bad.jsonl", tmp_path / "fine.jsonl"
    bad.write_bytes(text.encode())
    fine.write_bytes(text.rsplit("\n\n", 1)[0].encode())
    for read_bytes in range(1, len(text) + 1):  # every place a read can end
        monkeypatch.setattr(worker.ops.point_files, "READ_BYTES", read_bytes)
        with pytest.raises(BadInput) as refused:
            read_points(str(bad))
        assert "1 bad line, nothing enqueued:\n  line 6: name: required" in refused.value.message
        assert [point["step"] for point in read_points(str(fine))] == [0, 1, 2]


def test_blank_lines_do_not_count_in_a_batch(tmp_path):
    lines = [f'{{"name": "loss", "step": {n}, "value": 1}}' for n in range(7)]
    source = write(tmp_path, "points.jsonl", "\n\n".join(lines) + "\n\n\n")
    with checked_batches(source, None, 3) as batches:
        steps = [[point["step"] for point in orjson.loads(batch)] for batch in batches]
    assert steps == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_bad_line_after_good_batches_refuses_the_whole_file(tmp_path):
    lines = [f'{{"name": "loss", "step": {n}, "value": 1}}' for n in range(50)]
    lines[44] = '{"name": "loss", "step": 44, "value": 1, "unit": "s"}'
    source = write(tmp_path, "points.jsonl", "\n".join(lines))
    with pytest.raises(BadInput, match=r"1 bad line, nothing enqueued:\n  line 45: unit: unknown"):
        read_points(source, batch_size=10)


def test_memory_does_not_grow_with_the_file(tmp_path, monkeypatch):
    """The checked batches wait in a temporary file: checking four times as many points
    takes no more memory (a list of the points would take 30 times the file's size)."""
    import worker.ops.point_files

    monkeypatch.setattr(worker.ops.point_files, "READ_BYTES", 16 * 1024)

    def peak_bytes(count: int) -> int:
        line = '{"name": "loss", "step": %d, "value": 0.123456789}\n'
        source = write(tmp_path, f"{count}.jsonl", "".join(line % n for n in range(count)))
        tracemalloc.start()
        try:
            with checked_batches(source, None, 250) as batches:
                assert len(batches) == count // 250
                return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak_bytes(250)  # imports and builds the checks first
    small, large = peak_bytes(5_000), peak_bytes(20_000)
    assert large < small * 1.2
