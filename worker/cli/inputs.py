"""Command-line input into payloads: schema checks, ``--set`` pairs, metric files, job ids.

All of it runs before any connection is opened: bad input is refused with the field and
the problem named (exit code 2), and nothing is enqueued.
"""

from __future__ import annotations

import csv
import json
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from worker.cli.output import BadInput

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from worker.jobs import Job

M = TypeVar("M", bound="BaseModel")
MAX_REPORTED = 10  # bad lines of a file named one by one
POINT_COLUMNS = ("name", "step", "value", "recorded_at")
REQUIRED_COLUMNS = frozenset(POINT_COLUMNS[:3])
JSON_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
MAX_CHANGES_CHARS = 64 * 1024  # a profile's fields together are under 3,000 characters


def checked(job: Job[Any], raw: Mapping[str, Any], job_id: str) -> dict[str, Any]:
    """The payload to send: the fields given, checked by the job's schema (with the worker's
    defaults for the rest), as JSON. The defaults themselves are left to the worker."""
    from pydantic import ValidationError

    from worker.cli.connect import load_settings
    from worker.operations import checked_payload

    try:
        return checked_payload(job, raw, load_settings(), job_id)
    except ValidationError as problem:
        raise BadInput(describe(problem, job.label)) from None


def validated(schema: type[M], raw: Mapping[str, Any], label: Callable[[str], str]) -> M:
    """``raw`` as ``schema``, or a refusal naming each field as the user typed it."""
    from pydantic import ValidationError

    try:
        return schema.model_validate(raw)
    except ValidationError as problem:
        raise BadInput(describe(problem, label)) from None


def describe(problem: ValidationError, label: Callable[[str], str] | None = None) -> str:
    """Each problem as ``<what the user typed>: <what is wrong>``; without ``label``, the
    payload's own field names (``points.3.value``)."""
    from worker.errors import problems

    told = problems(problem, _where(label), plain=True)
    if len(told) == 1:
        return told[0]
    return "invalid input:\n  " + "\n  ".join(told)


def _where(label: Callable[[str], str] | None) -> Callable[[tuple[int | str, ...]], str]:
    """A field's location as the user typed it: ``--set bio`` for a change, else its label."""

    def where(loc: tuple[int | str, ...]) -> str:
        if not loc:
            return "input"
        if label is None:
            return ".".join(str(part) for part in loc)
        if loc[0] == "changes":
            return "--set" if len(loc) == 1 else f"--set {loc[1]}"
        return ".".join([label(str(loc[0])), *(str(part) for part in loc[1:])])

    return where


def new_job_id(given: str | None) -> str:
    """The given ``--job-id`` (any visible text, markup characters included), or a new one."""
    from worker.operations import job_id_problem

    if given is None:
        return uuid.uuid4().hex
    problem = job_id_problem(given)
    if problem is None:
        return given
    if problem.startswith("control"):
        raise BadInput(f"--job-id {given}: {problem}")
    raise BadInput(f"--job-id: {problem}")


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``--set field=value`` pairs (``full-name`` reads as ``full_name``); values stay text."""
    changes: dict[str, str] = {}
    for item in items:
        field, equals, value = item.partition("=")
        field = field.strip().replace("-", "_")
        if not equals or not field:
            raise BadInput(f"--set {item!r}: expected FIELD=VALUE")
        _check_settable(field, f"--set {field}")
        if field in changes:
            raise BadInput(f"--set {field}: given more than once")
        changes[field] = value
    return changes


def _check_settable(field: str, where: str) -> None:
    from domain.schemas import READ_ONLY_PROFILE_FIELDS, ProfileChanges

    settable = ProfileChanges.model_fields.keys()
    if field in READ_ONLY_PROFILE_FIELDS:
        raise BadInput(f"{where}: read-only field, it cannot be set")
    if field not in settable:
        raise BadInput(f"{where}: unknown field (settable: {', '.join(sorted(settable))})")


def read_changes(source: str) -> dict[str, Any]:
    """A profile's changes from a JSON object in a file (``-`` is stdin), each field checked
    as ``--set`` checks it, the values by the schema."""
    from pydantic import ValidationError

    from domain.schemas import ProfileChanges

    with _opened(source) as stream, _utf8(source):
        text = stream.read(MAX_CHANGES_CHARS + 1)
    if len(text) > MAX_CHANGES_CHARS:
        raise BadInput(f"--file {source}: over {MAX_CHANGES_CHARS:,} characters")
    try:
        changes = json.loads(text)
    except json.JSONDecodeError as problem:
        raise BadInput(f"--file {source}: not valid JSON ({problem})") from None
    if not isinstance(changes, dict):
        raise BadInput(f'--file {source}: expected a JSON object of changes, like {{"bio": "Hi"}}')
    if not changes:
        raise BadInput(f"--file {source}: no field to change in it")
    for field in changes:
        _check_settable(field, f"--file {source}: {field}")
    try:
        ProfileChanges.model_validate(changes)
    except ValidationError as problem:
        raise BadInput(f"--file {source}: {describe(problem)}") from None
    return changes


def read_points(source: str, file_format: str | None = None) -> list[dict[str, Any]]:
    """Metric points from JSON lines or CSV (``-`` is stdin), each checked, with line numbers."""
    kind = file_format or format_of(source)
    numbered: list[tuple[int, dict[str, Any]]] = []
    problems: list[tuple[int, str]] = []
    with _opened(source) as stream:
        rows = _csv_rows(stream, source) if kind == "csv" else _json_rows(stream)
        for line, row in _decoded(rows, source):
            if isinstance(row, str):
                problems.append((line, row))
            else:
                numbered.append((line, row))
    points = _valid_points([row for _, row in numbered])
    if points is None:
        problems += _point_problems(numbered)
    _refuse(source, [f"line {line}: {problem}" for line, problem in sorted(problems)])
    if not points:
        raise BadInput(f"--file {source}: no metric points in it")
    return points


def _valid_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """All rows checked in one call (fast); ``None`` when any of them is invalid."""
    from pydantic import TypeAdapter, ValidationError

    from domain.schemas import MetricPoint

    adapter = TypeAdapter(list[MetricPoint])
    try:
        points = adapter.validate_python(rows)
    except ValidationError:
        return None
    dumped: list[dict[str, Any]] = adapter.dump_python(points, mode="json", exclude_none=True)
    return dumped


def _point_problems(numbered: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, str]]:
    """Each invalid row described on its own, with its line number."""
    from pydantic import ValidationError

    from domain.schemas import MetricPoint

    problems = []
    for line, row in numbered:
        try:
            MetricPoint.model_validate(row)
        except ValidationError as problem:
            problems.append((line, describe(problem)))
    return problems


def _refuse(source: str, problems: list[str]) -> None:
    if not problems:
        return
    shown = problems[:MAX_REPORTED]
    more = len(problems) - len(shown)
    if more:
        shown.append(f"... and {more} more")
    count = f"{len(problems)} bad line" + ("s" if len(problems) > 1 else "")
    raise BadInput(f"--file {source}: {count}, nothing enqueued:\n  " + "\n  ".join(shown))


def format_of(source: str) -> str:
    if source == "-":
        return "jsonl"
    suffix = Path(source).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in JSON_SUFFIXES:
        return "jsonl"
    raise BadInput(f"--file {source}: cannot tell its format from the name; add --format")


@contextmanager
def _opened(source: str) -> Iterator[IO[str]]:
    if source == "-":
        yield sys.stdin
        return
    try:
        stream = Path(source).open(encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as problem:
        raise BadInput(f"--file {source}: {problem.strerror or problem}") from None
    with stream:
        yield stream


def _decoded(
    rows: Iterator[tuple[int, dict[str, Any] | str]], source: str
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    with _utf8(source):
        yield from rows


@contextmanager
def _utf8(source: str) -> Iterator[None]:
    try:
        yield
    except UnicodeDecodeError:
        raise BadInput(f"--file {source}: not UTF-8 text") from None


def _json_rows(stream: IO[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as problem:
            yield number, f"not valid JSON ({problem.msg})"
            continue
        yield number, value if isinstance(value, dict) else "expected one JSON object per line"


def _csv_rows(stream: IO[str], source: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
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


def _csv_point(row: dict[str, str]) -> dict[str, Any]:
    point = {column: value.strip() for column, value in row.items()}
    if not point.get("recorded_at"):
        point.pop("recorded_at", None)
    return point
