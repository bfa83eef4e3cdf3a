"""Tables for people: rows under a title that fit the terminal (80 columns too), and the
formats of their cells. The ``whole`` columns (ids, meant to be copied) are never folded
or cut; the ``droppable`` ones are left out first when the rest cannot fit."""

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
