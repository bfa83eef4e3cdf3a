"""A file of metric points (read by ``worker.ops.point_files``) checked whole, then handed
over in batches: for ``dbjobs enqueue record-metrics --file``, and any producer with a file.

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

import io
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import IO, TYPE_CHECKING, Annotated, Any, cast

from worker.ops.point_files import BadPointFile, Batch, Format, Item, csv_batches, json_batches
from worker.text import described

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from domain.schemas import MetricPoint

MAX_REPORTED = 10  # bad lines named one by one


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

    def refuse(self) -> None:
        if not self.count:
            return
        more = self.count - len(self.shown)
        listed = self.shown + ([f"... and {more} more"] if more else [])
        count = f"{self.count} bad line" + ("s" if self.count > 1 else "")
        raise BadPointFile(f"{count}, nothing enqueued:\n  " + "\n  ".join(listed))


@contextmanager
def checked_batches(stream: IO[bytes], file_format: Format, batch_size: int) -> Iterator[Batches]:
    """The points of ``stream`` (UTF-8) in batches of ``batch_size``, once every line is
    checked; else a ``BadPointFile`` naming the bad lines, and nothing to send."""
    with tempfile.TemporaryFile() as spill:
        batches, problems = Batches(spill), Problems()
        try:
            for numbers, items in _read(stream, file_format, batch_size):
                encoded = _checked(numbers, items, problems)
                if encoded is not None and not problems.count:
                    batches.add(encoded)
        except UnicodeDecodeError:
            raise BadPointFile("not UTF-8 text") from None
        problems.refuse()
        if not batches:
            raise BadPointFile("no metric points in it")
        yield batches


def batch_payloads(
    batches: Batches,
    fields: Mapping[str, Any],
    check: Callable[[dict[str, Any]], dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    """A ``record_metrics`` payload per batch: ``fields`` (the run, the conflict policy) and
    the batch's points, checked once by ``check`` (the face's own check of a payload, which
    tells its problems its own way) before the first is handed over.

    The points are checked already. What is left (the run id, the batch length, the
    policy) is the same for every batch or largest in the first, so checking the first
    covers all.
    """
    import orjson

    head = check({**fields, "points": orjson.loads(next(iter(batches)))})
    return ({**head, "points": orjson.Fragment(batch)} for batch in batches)


def _read(stream: IO[bytes], file_format: Format, batch_size: int) -> Iterator[Batch]:
    if file_format != "csv":
        yield from json_batches(stream, batch_size)
        return
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    try:
        yield from csv_batches(text, batch_size)
    finally:
        text.detach()  # the stream is the caller's to close


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
            problems.add(line, described(problem, _field))
    if problems.count > told or not points:
        return None
    return TypeAdapter(list[MetricPoint]).dump_json(points, exclude_none=True)


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "input"


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
