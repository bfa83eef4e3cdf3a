"""Tables for people: rows under a title that fit the terminal (80 columns too), and the
formats of their cells. The ``whole`` columns (ids, meant to be copied) are never folded
or cut; the ``droppable`` ones are left out first when the rest cannot fit, and when even
the ``whole`` ones cannot sit side by side, each row is a record of lines instead."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.cli.output import answer, literal, say, short_time, stdout

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
    width = stdout().width
    kept = _fitting(columns, texts, width, whole, droppable)
    if _width_of(kept, columns, texts, whole) > width:
        _show_records(title, columns, texts, width)
        return
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

    kept = list(range(len(columns)))
    for name in droppable:
        if _width_of(kept, columns, texts, whole) <= width:
            break
        kept.remove(columns.index(name))
    return kept


def _width_of(
    kept: Sequence[int],
    columns: Sequence[str],
    texts: Sequence[Sequence[str]],
    whole: Collection[str],
) -> int:
    """The narrowest table of the ``kept`` columns: the ``whole`` ones at full width, the
    others folded to ``FOLDED_WIDTH``; "│ " and " " per cell, "│" to close."""

    def needs(index: int) -> int:
        widest = max([len(columns[index]), *(len(row[index]) for row in texts)])
        return widest if columns[index] in whole else min(widest, FOLDED_WIDTH)

    return sum(needs(index) + 3 for index in kept) + 1


def _show_records(
    title: str, columns: Sequence[str], texts: Sequence[Sequence[str]], width: int
) -> None:
    """Each row as its first cell on a line of its own (an id: whole, however long), then
    its other cells as ``name: value``, as many to a line as ``width`` holds."""
    say(title)
    for row in texts:
        say(row[0])
        lines = [""]
        for name, cell in zip(columns[1:], row[1:], strict=True):
            field = f"{name}: {cell}"
            if lines[-1] and len(lines[-1]) + 2 + len(field) > width - 2:
                lines.append("")
            lines[-1] += f"  {field}" if lines[-1] else field
        for line in lines:
            say(f"  {line}")


def show_fields(title: str, fields: Mapping[str, Any]) -> None:
    """One object as a two-column table: field, value."""
    show_table(title, ("field", "value"), [(name, value) for name, value in fields.items()])


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


def table_time(value: Any) -> str:
    """``MM-DD hh:mm:ss``: narrow enough that a table's timestamps never wrap in 80
    columns (the year is rarely news; ``--json`` has the whole time)."""
    return short_time(value)[5:]


def number(value: Any) -> str:
    """A value for a table cell: six significant digits (``--json`` and ``--csv`` have all)."""
    return "" if value is None else f"{value:.6g}"
