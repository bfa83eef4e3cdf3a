"""Command-line input into payloads: schema checks, ``--set`` pairs, files, job ids.

All of it runs before any connection is opened: bad input is refused with the field and
the problem named (exit code 2), and nothing is enqueued.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from worker.cli.output import BadInput

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from worker.ops.point_checks import Batches
    from worker.ops.point_files import Format
    from worker.registry import Job

M = TypeVar("M", bound="BaseModel")
MAX_CHANGES_CHARS = 64 * 1024  # a profile's fields together are under 3,000 characters


def checked(job: Job[Any], raw: Mapping[str, Any], job_id: str) -> dict[str, Any]:
    """The payload to send: the fields given, checked by the job's schema (with the worker's
    defaults for the rest), as JSON. The defaults themselves are left to the worker."""
    from pydantic import ValidationError

    from worker.environment import load_settings
    from worker.ops.actions import checked_payload

    try:
        return checked_payload(job, raw, load_settings(), job_id)
    except ValidationError as problem:
        raise BadInput(describe(problem, job.label)) from None


def validated(
    schema: type[M], raw: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> M:
    """``raw`` as ``schema`` (a read's query), or a refusal naming each field as the user
    typed it: ``--field``, unless ``labels`` names it otherwise (``{"run_id": "RUN"}``)."""
    from pydantic import ValidationError

    try:
        return schema.model_validate(raw)
    except ValidationError as problem:
        named = labels or {}
        raise BadInput(describe(problem, lambda field: named.get(field, f"--{field}"))) from None


def describe(problem: ValidationError, label: Callable[[str], str] | None = None) -> str:
    """Each problem as ``<what the user typed>: <what is wrong>``; without ``label``, the
    payload's own field names (``points.3.value``)."""
    from worker.text import described

    return described(problem, _where(label))


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
    from worker.ops.actions import job_id_problem

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

    with opened(source) as stream:
        try:
            text = stream.read(MAX_CHANGES_CHARS + 1)
        except UnicodeDecodeError:
            raise BadInput(f"--file {source}: not UTF-8 text") from None
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
def checked_batches(source: str, file_format: str | None, batch_size: int) -> Iterator[Batches]:
    """The metric points of ``--file`` (``-`` is stdin) in batches of ``batch_size``, once
    the whole file is checked (``worker.ops.point_checks``); a file refused is bad input."""
    from worker.ops import point_checks
    from worker.ops.point_files import BadPointFile, format_of

    named = file_format or ("jsonl" if source == "-" else format_of(source))
    if named is None:
        raise BadInput(f"--file {source}: cannot tell its format from the name; add --format")
    with ExitStack() as kept:  # the checked batches, once the file is closed
        with opened(source, binary=True) as stream:
            fmt: Format = "csv" if named == "csv" else "jsonl"
            try:
                batches = kept.enter_context(point_checks.checked_batches(stream, fmt, batch_size))
            except BadPointFile as problem:
                raise BadInput(f"--file {source}: {problem.message}") from None
        yield batches
