"""What the CLI prints: one JSON object for machines, Rich for people, problems on stderr.

Everything printed passes through ``printable`` (``worker.text``, which the console uses
too): stored and received text (names, bios, job ids, error messages) is shown as it is,
never read as Rich markup, and never acted on by the terminal. Rich is imported when
something is printed, not when the CLI starts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def answer(data: Any, as_json: bool, show: Callable[[Any], None]) -> None:
    """A read command's answer: exactly one JSON object, or ``show``n to people."""
    if as_json:
        emit_json(data)
    else:
        show(data)


def short_time(value: Any) -> str:
    """ISO timestamps trimmed to the second, for messages."""
    text = "" if value is None else str(value)
    return text[:19].replace("T", " ")


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
