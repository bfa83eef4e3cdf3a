"""What the CLI prints: one JSON object for machines, Rich for people, problems on stderr.

Rich is imported when something is printed, not when the CLI starts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130


def command_group(help_text: str, **options: Any) -> typer.Typer:
    """A Typer app with plain help: Rich help costs 0.3 s of imports on every ``--help``."""
    return typer.Typer(help=help_text, rich_markup_mode=None, no_args_is_help=True, **options)


class CliError(Exception):
    """A refusal or a failure told to the user in a line or two, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class BadInput(CliError):
    """Input refused before anything was enqueued or read: exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_BAD_INPUT)


def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def emit_json(data: Mapping[str, Any]) -> None:
    """Exactly one JSON object on one line: no Rich, so nothing wraps or gets styled."""
    sys.stdout.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def say(message: str) -> None:
    stdout().print(message, markup=False)


def note(message: str) -> None:
    """Progress and hints for people go to stderr, so stdout stays the answer."""
    stderr().print(message, markup=False, style="dim")


def error(message: str) -> None:
    stderr().print(f"error: {message}", markup=False, style="bold red", soft_wrap=True)


def show_json(data: Any) -> None:
    """A result for people: indented, coloured JSON."""
    stdout().print_json(data=data, default=str)


def show_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    stdout().print(table)


def show_fields(title: str, fields: Mapping[str, Any]) -> None:
    """One object as a two-column table: field, value."""
    show_table(title, ("field", "value"), [(name, value) for name, value in fields.items()])


def short_time(value: Any) -> str:
    """ISO timestamps trimmed to the second, for tables."""
    text = "" if value is None else str(value)
    return text[:19].replace("T", " ")
