"""A file of metric points read as ``worker.ops.point_checks`` checks it: JSON lines (left
undecoded) or CSV rows (``name,step,value[,recorded_at]``), in batches with the numbers of
their lines, never held whole. What makes the whole file unreadable is a ``BadPointFile``."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import PurePath
from typing import IO, Literal

Format = Literal["jsonl", "csv"]
Item = bytes | dict[str, str] | str  # a JSON line, a CSV row, or what is wrong with the row
Batch = tuple[Sequence[int], Sequence[Item]]  # line numbers and lines
READ_BYTES = 1 << 20
POINT_COLUMNS = ("name", "step", "value", "recorded_at")
REQUIRED_COLUMNS = frozenset(POINT_COLUMNS[:3])
FORMATS: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}


class BadPointFile(Exception):
    """A file of points refused as a whole: nothing in it is to be sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def format_of(name: str) -> Format | None:
    """``jsonl`` or ``csv``, as the file's name says; None when it does not say."""
    return FORMATS.get(PurePath(name).suffix.lower())


def json_batches(stream: IO[bytes], size: int) -> Iterator[Batch]:
    """Batches of ``size`` lines that are not empty (fewer in the last), with their line
    numbers: the lines are not looked at one by one here."""
    numbers: list[int] = []
    lines: list[bytes] = []
    number = 1
    for chunk in _lines(stream):
        if b"" in chunk:
            kept = [at for at, line in enumerate(chunk) if line]
            numbers += (number + at for at in kept)
            lines += (chunk[at] for at in kept)
        else:
            numbers += range(number, number + len(chunk))
            lines += chunk
        number += len(chunk)
        while len(lines) >= size:
            yield numbers[:size], lines[:size]
            del numbers[:size], lines[:size]
    if lines:
        yield numbers, lines


def _lines(stream: IO[bytes]) -> Iterator[list[bytes]]:
    """The lines of a binary stream a chunk at a time, ended where text mode ends them
    (\\n, \\r\\n or \\r), so that the numbers are those a text editor shows."""
    rest = b""
    while chunk := stream.read(READ_BYTES):
        lines = (rest + chunk).splitlines()
        rest = b""
        if not chunk.endswith(b"\n"):  # the last line may go on; a "\r" may start "\r\n"
            rest = lines.pop() + (b"\r" if chunk.endswith(b"\r") else b"")
        yield lines
    if rest:
        yield rest.splitlines()


def csv_batches(stream: IO[str], size: int) -> Iterator[Batch]:
    """Batches of ``size`` rows (as the header names their fields), with their line numbers."""
    rows = _csv_rows(stream)
    while batch := list(islice(rows, size)):
        numbers, items = zip(*batch, strict=True)
        yield numbers, items


def _csv_rows(stream: IO[str]) -> Iterator[tuple[int, dict[str, str] | str]]:
    reader = csv.DictReader(stream)
    if reader.fieldnames is None:
        return
    columns = [column.strip() for column in reader.fieldnames]
    _check_header(columns)
    reader.fieldnames = columns
    for row in reader:
        if None in row:
            yield reader.line_num, "more values than columns"
        elif any(value is None for value in row.values()):
            yield reader.line_num, "fewer values than columns"
        else:
            yield reader.line_num, _csv_point(row)


def _check_header(columns: list[str]) -> None:
    missing = sorted(REQUIRED_COLUMNS - set(columns))
    unknown = sorted(set(columns) - set(POINT_COLUMNS))
    if missing or unknown or len(set(columns)) != len(columns):
        raise BadPointFile(
            "the CSV header must be name,step,value[,recorded_at]"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )


def _csv_point(row: dict[str, str]) -> dict[str, str]:
    point = {column: value.strip() for column, value in row.items()}
    if not point.get("recorded_at"):
        point.pop("recorded_at", None)
    return point
