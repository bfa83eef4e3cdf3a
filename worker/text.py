"""How an error is told, wherever it is told (the job history, a job's result in Redis, the
worker's log, the CLI): a failure's first line, and a validation error's problems. Each is
bounded: a payload with a flood of bad fields names the first ten and counts the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

MAX_MESSAGE_CHARS = 2000
MAX_PROBLEMS_NAMED = 10
MAX_LOCATION_CHARS = 80
# Pydantic's wording where a person typed the field (the CLI); the history keeps pydantic's.
PLAIN_WORDS = {"extra_forbidden": "unknown field", "missing": "required"}

Label = Callable[[tuple[int | str, ...]], str]


def capped(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to about ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def first_line(error: BaseException, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A failure in one line: its message's first line, or its type when it has none."""
    lines = str(error).strip().splitlines()
    return capped(lines[0], limit) if lines else type(error).__name__


def problems(
    error: ValidationError, label: Label | None = None, *, plain: bool = False
) -> list[str]:
    """Each problem as ``<where>: <what>``, the first few and a count of the rest.

    ``label`` names a field as the user typed it (``--full-name``, ``RUN_ID``); without it,
    the payload's own path (``points.3.value``). ``plain`` uses plain words for the common
    problems ("unknown field", "required").
    """
    where = label or _dotted
    told = []
    for item in error.errors(include_url=False, include_input=False)[:MAX_PROBLEMS_NAMED]:
        message = item["msg"].removeprefix("Value error, ")
        if plain:
            message = PLAIN_WORDS.get(item["type"], message)
        told.append(f"{capped(where(item['loc']), MAX_LOCATION_CHARS)}: {message}")
    more = error.error_count() - len(told)
    if more:
        told.append(f"and {more:,} more problem{'s' if more > 1 else ''}")
    return told


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "payload"
