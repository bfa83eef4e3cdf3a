"""What the CLI prints: one JSON object for machines, Rich for people, problems on stderr.

Everything printed passes through ``printable`` (``worker.text``, which the console uses
too): stored and received text (names, bios, job ids, error messages) is shown as it is,
never read as Rich markup, and never acted on by the terminal. Rich is imported when
something is printed, not when the CLI starts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from worker.text import ExitCode, printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text


class Mode:
    """Whether the command line asked for ``--json``: then every path, refusals and time-outs
    included, prints exactly one JSON object on stdout."""

    json = False


def command_group(help_text: str, **options: Any) -> typer.Typer:
    """A Typer app with plain help: Rich help costs 0.3 s of imports on every ``--help``."""
    return typer.Typer(help=help_text, rich_markup_mode=None, no_args_is_help=True, **options)


class CliError(Exception):
    """A refusal or a failure told to the user in a line or two, with its exit code."""

    def __init__(
        self, message: str, code: ExitCode = ExitCode.FAILED, *, job_id: str | None = None
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.job_id = job_id


class BadInput(CliError):
    """Input refused before anything was enqueued or read: exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.BAD_INPUT)


def literal(value: Any, *, one_line: bool = True, style: str = "") -> Text:
    """``printable(value)`` as a Rich ``Text``: no markup, emoji codes or highlighting."""
    from rich.text import Text

    return Text(printable(value, one_line=one_line), style=style)


def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def emit_json(data: Mapping[str, Any]) -> None:
    """Exactly one JSON object on one line: no Rich, so nothing wraps or gets styled.

    The data are exact; the characters a terminal would act on are JSON escapes.
    """
    sys.stdout.write(printable(json.dumps(data, default=str, ensure_ascii=False)) + "\n")
    sys.stdout.flush()


def say(message: str) -> None:
    stdout().print(literal(message, one_line=False))


def note(message: str) -> None:
    """Progress and hints for people go to stderr, so stdout stays the answer."""
    stderr().print(literal(message, one_line=False, style="dim"))


def warn(message: str) -> None:
    """Something the user should act on although the command succeeded (stderr)."""
    stderr().print(literal(f"warning: {message}", one_line=False, style="yellow"))


def error(message: str) -> None:
    stderr().print(literal(f"error: {message}", one_line=False, style="bold red"), soft_wrap=True)


def refuse(problem: CliError) -> None:
    """A refusal in the one error style: a line on stderr, and with ``--json`` the same as
    ``{"error": {"type", "message", "job_id"}}`` on stdout."""
    error(problem.message)
    if Mode.json:
        kind = problem.code.name.lower()
        emit_json({"error": {"type": kind, "message": problem.message, "job_id": problem.job_id}})


def show_json(data: Any) -> None:
    """A result for people: indented, coloured JSON."""
    from rich.highlighter import JSONHighlighter

    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    stdout().print(JSONHighlighter()(literal(text, one_line=False)), soft_wrap=True)


FOLDED_WIDTH = 10  # the narrowest a folded column may get before one is left out


def show_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    empty: str = "",
    whole: Collection[str] = (),
    droppable: Sequence[str] = (),
) -> None:
    """Rows under their title; with no row, the ``empty`` sentence instead of a bare frame.

    The ``whole`` columns (ids, to be copied) are never folded or cut; when the terminal is
    too narrow for them beside the others, the ``droppable`` ones are left out, in order."""
    from rich.table import Table

    if not rows and empty:
        say(empty)
        return
    texts = [[str(cell) for cell in row] for row in rows]
    kept = _fitting(columns, texts, stdout().width, whole, droppable)
    table = Table(title=literal(title), title_justify="left")
    for index in kept:
        name = columns[index]
        if name in whole:
            widest = max([len(name), *(len(row[index]) for row in texts)])
            table.add_column(literal(name), no_wrap=True, min_width=widest)
        else:
            table.add_column(literal(name), overflow="fold")
    for row in rows:
        table.add_row(*(literal(row[index]) for index in kept))
    stdout().print(table)


def _fitting(
    columns: Sequence[str],
    texts: Sequence[Sequence[str]],
    width: int,
    whole: Collection[str],
    droppable: Sequence[str],
) -> list[int]:
    """The columns shown: all of them, less the ``droppable`` ones (in order) the ``whole``
    columns at full width and the others folded to ``FOLDED_WIDTH`` need room for."""

    def needs(index: int) -> int:
        widest = max([len(columns[index]), *(len(row[index]) for row in texts)])
        return widest if columns[index] in whole else min(widest, FOLDED_WIDTH)

    kept = list(range(len(columns)))
    for name in droppable:
        if sum(needs(i) + 3 for i in kept) + 1 <= width:  # "│ " per cell, "│" to close
            break
        kept.remove(columns.index(name))
    return kept


def show_fields(title: str, fields: Mapping[str, Any]) -> None:
    """One object as a two-column table: field, value."""
    show_table(title, ("field", "value"), [(name, value) for name, value in fields.items()])


def answer(data: Any, as_json: bool, show: Callable[[Any], None]) -> None:
    """A read command's answer: exactly one JSON object, or ``show``n to people."""
    if as_json:
        emit_json(data)
    else:
        show(data)


@dataclass(frozen=True)
class Listing:
    """How a list of records reads: ``{key: [...]}`` with ``--json``, else a table of a row
    per record, titled with the count (or the ``empty`` sentence when there is none)."""

    key: str
    noun: str  # after the count in the title: "job(s)"
    columns: Sequence[str]
    row: Callable[[Mapping[str, Any]], Sequence[Any]]
    empty: str = ""
    whole: Collection[str] = ()  # never folded or cut (ids, to be copied)
    droppable: Sequence[str] = ()  # left out, in this order, when 80 columns cannot hold all

    def show(self, records: Sequence[Mapping[str, Any]], as_json: bool) -> None:
        answer({self.key: records}, as_json, lambda _: self.table(records))

    def table(self, records: Sequence[Mapping[str, Any]], title: str | None = None) -> None:
        rows = [self.row(record) for record in records]
        show_table(
            title or f"{len(rows)} {self.noun}",
            self.columns,
            rows,
            empty=self.empty,
            whole=self.whole,
            droppable=self.droppable,
        )


def short_time(value: Any) -> str:
    """ISO timestamps trimmed to the second, for messages."""
    text = "" if value is None else str(value)
    return text[:19].replace("T", " ")


def table_time(value: Any) -> str:
    """``MM-DD hh:mm:ss``: narrow enough that a table's timestamps never wrap in 80
    columns (the year is rarely news; ``--json`` has the whole time)."""
    return short_time(value)[5:]


def emit_csv(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> None:
    """Rows of CSV on stdout (``None`` is an empty cell), each cell shown literally;
    called again, more rows of the same CSV."""
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows([printable(cell) for cell in row] for row in rows)
    sys.stdout.flush()


class JsonList:
    """Exactly one JSON object on stdout, ``{**head, key: [...]}``, written as its items
    arrive: a million points never sit in memory together."""

    def __init__(self, head: Mapping[str, Any], key: str) -> None:
        opening = json.dumps({**head, key: []}, default=str, ensure_ascii=False)
        sys.stdout.write(printable(opening[: -len("]}")]))
        self._empty = True

    def add(self, items: Iterable[Mapping[str, Any]]) -> None:
        for item in items:
            text = json.dumps(item, default=str, ensure_ascii=False)
            sys.stdout.write(printable(text if self._empty else f", {text}"))
            self._empty = False

    def close(self) -> None:
        sys.stdout.write("]}\n")
        sys.stdout.flush()


def number(value: Any) -> str:
    """A value for a table cell: six significant digits (``--json`` and ``--csv`` have all)."""
    return "" if value is None else f"{value:.6g}"
