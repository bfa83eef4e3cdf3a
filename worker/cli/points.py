"""Metric points from a file (JSON lines or CSV) for ``jobs enqueue record-metrics --file``.

The whole file is checked before anything is sent, so that bad input leaves nothing
written (sending each batch once checked would let the worker start sooner, and commit
the 899 batches before a bad line 900,000). The check is made cheap instead: a batch of
lines is parsed as one JSON array and checked by pydantic-core against a TypedDict of
``MetricPoint``'s fields, with no model and no Python per point (1.5 µs a point, against
6.5 µs for ``json.loads`` and a ``MetricPoint`` per line). A batch it refuses is checked
line by line by ``MetricPoint`` itself, which names each bad line and field. The checked
batches wait, serialized, in a temporary file: memory does not grow with the file.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, cast

from worker.cli.inputs import describe, opened, utf8
from worker.cli.output import BadInput

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from domain.schemas import MetricPoint

Item = bytes | dict[str, str] | str  # a JSON line, a CSV row, or what is wrong with the row
Batch = tuple[Sequence[int], Sequence[Item]]  # line numbers and lines
MAX_REPORTED = 10  # bad lines named one by one
READ_BYTES = 1 << 20
POINT_COLUMNS = ("name", "step", "value", "recorded_at")
REQUIRED_COLUMNS = frozenset(POINT_COLUMNS[:3])
JSON_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})


@dataclass
class Batches:
    """The file's points, checked: each batch one JSON array, kept in a temporary file."""

    spill: IO[bytes]
    sizes: list[int] = field(default_factory=list)

    def add(self, encoded: bytes) -> None:
        self.spill.write(encoded)
        self.sizes.append(len(encoded))

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self) -> Iterator[bytes]:
        self.spill.seek(0)
        for size in self.sizes:
            yield self.spill.read(size)


@dataclass
class Problems:
    """The bad lines: all counted, the first ``MAX_REPORTED`` kept to be named."""

    count: int = 0
    shown: list[str] = field(default_factory=list)

    def add(self, line: int, problem: str) -> None:
        self.count += 1
        if len(self.shown) < MAX_REPORTED:
            self.shown.append(f"line {line}: {problem}")

    def refuse(self, source: str) -> None:
        if not self.count:
            return
        more = self.count - len(self.shown)
        listed = self.shown + ([f"... and {more} more"] if more else [])
        count = f"{self.count} bad line" + ("s" if self.count > 1 else "")
        raise BadInput(f"--file {source}: {count}, nothing enqueued:\n  " + "\n  ".join(listed))


@contextmanager
def checked_batches(source: str, file_format: str | None, batch_size: int) -> Iterator[Batches]:
    """The points of ``source`` (``-`` is stdin) in batches of ``batch_size``, once every
    line is checked; else a refusal naming the bad lines, and nothing to send."""
    kind = file_format or format_of(source)
    with tempfile.TemporaryFile() as spill:
        batches, problems = Batches(spill), Problems()
        with opened(source, binary=kind != "csv") as stream, utf8(source):
            read = (
                _csv_batches(stream, source, batch_size)
                if kind == "csv"
                else _json_batches(stream, batch_size)
            )
            for numbers, items in read:
                encoded = _checked(numbers, items, problems)
                if encoded is not None and not problems.count:
                    batches.add(encoded)
        problems.refuse(source)
        if not batches:
            raise BadInput(f"--file {source}: no metric points in it")
        yield batches


def format_of(source: str) -> str:
    if source == "-":
        return "jsonl"
    suffix = Path(source).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in JSON_SUFFIXES:
        return "jsonl"
    raise BadInput(f"--file {source}: cannot tell its format from the name; add --format")


def _checked(numbers: Sequence[int], items: Sequence[Item], problems: Problems) -> bytes | None:
    """The batch as a JSON array of points, or ``None`` with its bad lines told."""
    import orjson

    points = _fast_check(items)
    if points is not None:
        return orjson.dumps(points, option=orjson.OPT_UTC_Z)  # 3x pydantic's dump_json
    return _one_by_one(zip(numbers, items, strict=True), problems)


def _fast_check(items: Sequence[Item]) -> list[dict[str, Any]] | None:
    """The points, or ``None`` if the fast check refuses any line (or finds a line that
    does not hold exactly one point): then the lines are checked one by one."""
    import orjson
    from pydantic import ValidationError

    rows: Any = items
    if isinstance(items[0], bytes):
        lines = cast(list[bytes], [item for item in items if item] if b"" in items else items)
        try:  # parsed as the worker parses a payload: orjson, then the schema in Python mode
            rows = orjson.loads(b"[" + b",".join(lines) + b"]")
        except orjson.JSONDecodeError:
            return None
        # No field holds an array or object, and no string spans lines: so as many
        # points as lines means one point per line.
        if len(rows) != len(lines):
            return None
    elif not all(isinstance(item, dict) for item in items):
        return None
    try:
        return cast(list[dict[str, Any]], _fast().validate_python(rows))
    except ValidationError:
        return None


def _one_by_one(batch: Iterable[tuple[int, Item]], problems: Problems) -> bytes | None:
    """Each line checked with ``MetricPoint`` itself, so that its errors name the field."""
    from pydantic import TypeAdapter, ValidationError

    from domain.schemas import MetricPoint

    points: list[MetricPoint] = []
    told = problems.count
    for line, item in batch:
        row = _row(item)
        if row is None:
            continue
        if isinstance(row, str):
            problems.add(line, row)
            continue
        try:
            points.append(MetricPoint.model_validate(row))
        except ValidationError as problem:
            problems.add(line, describe(problem))
    if problems.count > told or not points:
        return None
    return TypeAdapter(list[MetricPoint]).dump_json(points, exclude_none=True)


def _row(item: Item) -> dict[str, Any] | str | None:
    """A point's fields, what is wrong with its line, or ``None`` for a blank line."""
    if not isinstance(item, bytes):
        return item
    text = item.decode()  # UnicodeDecodeError: the whole file is refused as not UTF-8
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as problem:
        return f"not valid JSON ({problem.msg})"
    return value if isinstance(value, dict) else "expected one JSON object per line"


@cache
def _fast() -> TypeAdapter[Any]:
    """``list[MetricPoint]`` as a list of TypedDicts of its fields: the same annotations
    and constraints, unknown fields refused, but no model built and no validator in Python
    run per point. It accepts nothing the model refuses (the model adds only a shorter
    refusal of many unknown fields)."""
    from typing import NotRequired, Required

    from pydantic import ConfigDict, TypeAdapter
    from typing_extensions import TypedDict

    from domain.schemas import MetricPoint

    fields: dict[str, Any] = {}
    for name, info in MetricPoint.model_fields.items():
        kind: Any = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        fields[name] = Required[kind] if info.is_required() else NotRequired[kind]
    typed_dict: Any = TypedDict  # called with names known only here
    point = typed_dict("MetricPointFields", fields)
    longest = MetricPoint.model_config.get("str_max_length")
    point.__pydantic_config__ = ConfigDict(extra="forbid", str_max_length=longest)
    return TypeAdapter(cast(Any, list[point]))  # type: ignore[valid-type]


def _json_batches(stream: IO[bytes], size: int) -> Iterator[Batch]:
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


def _csv_batches(stream: IO[str], source: str, size: int) -> Iterator[Batch]:
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
