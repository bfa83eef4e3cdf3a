"""Files given on the command line (a path, or ``-`` for stdin), read as the CLI reads them:
UTF-8 checked; a file of metric points in batches of numbered lines (JSON lines, left
undecoded) or rows (CSV), never held whole."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, Any

from worker.cli.output import BadInput

Item = bytes | dict[str, str] | str  # a JSON line, a CSV row, or what is wrong with the row
Batch = tuple[Sequence[int], Sequence[Item]]  # line numbers and lines
READ_BYTES = 1 << 20
POINT_COLUMNS = ("name", "step", "value", "recorded_at")
REQUIRED_COLUMNS = frozenset(POINT_COLUMNS[:3])
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}


@contextmanager
def opened(source: str, *, binary: bool = False) -> Iterator[IO[Any]]:
    """The file, or stdin for ``-``: text as UTF-8 with line endings as they are, or bytes."""
    if source == "-":
        yield sys.stdin.buffer if binary else sys.stdin
        return
    path = Path(source)
    try:
        stream: IO[Any] = path.open("rb") if binary else path.open(encoding="utf-8", newline="")
    except OSError as problem:
        raise BadInput(f"--file {source}: {problem.strerror or problem}") from None
    with stream:
        yield stream


@contextmanager
def utf8(source: str) -> Iterator[None]:
    try:
        yield
    except UnicodeDecodeError:
        raise BadInput(f"--file {source}: not UTF-8 text") from None


def format_of(source: str) -> str:
    suffix = ".jsonl" if source == "-" else Path(source).suffix.lower()
    if suffix not in FORMATS:
        raise BadInput(f"--file {source}: cannot tell its format from the name; add --format")
    return FORMATS[suffix]


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


def csv_batches(stream: IO[str], source: str, size: int) -> Iterator[Batch]:
    rows = _csv_rows(stream, source)
    while batch := list(islice(rows, size)):
        numbers, items = zip(*batch, strict=True)
        yield numbers, items


def _csv_rows(stream: IO[str], source: str) -> Iterator[tuple[int, dict[str, str] | str]]:
    reader = csv.DictReader(stream)
    if reader.fieldnames is None:
        return
    columns = [column.strip() for column in reader.fieldnames]
    _check_header(columns, source)
    reader.fieldnames = columns
    for row in reader:
        if None in row:
            yield reader.line_num, "more values than columns"
        elif any(value is None for value in row.values()):
            yield reader.line_num, "fewer values than columns"
        else:
            yield reader.line_num, _csv_point(row)


def _check_header(columns: list[str], source: str) -> None:
    missing = sorted(REQUIRED_COLUMNS - set(columns))
    unknown = sorted(set(columns) - set(POINT_COLUMNS))
    if missing or unknown or len(set(columns)) != len(columns):
        raise BadInput(
            f"--file {source}: the CSV header must be name,step,value[,recorded_at]"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )


def _csv_point(row: dict[str, str]) -> dict[str, str]:
    point = {column: value.strip() for column, value in row.items()}
    if not point.get("recorded_at"):
        point.pop("recorded_at", None)
    return point
