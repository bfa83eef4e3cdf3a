"""How text is told, wherever it is told (the job history, a job's result in Redis, the
worker's log, the CLI, the console's pages, the demo): a failure's first line, a
validation error's problems, stored text made safe for a terminal or a page, and how a
command's end is told to the shell. Each is bounded: a payload with a flood of bad fields
names the first ten and counts the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

MAX_MESSAGE_CHARS = 2000
MAX_PROBLEMS_NAMED = 10
MAX_LOCATION_CHARS = 80
# Pydantic's wording where a person typed the field (the CLI); the history keeps pydantic's.
PLAIN_WORDS = {"extra_forbidden": "unknown field", "missing": "required"}

Label = Callable[[tuple[int | str, ...]], str]


class ExitCode(IntEnum):
    """How a command ends, for the shell: the CLI's commands and the demo alike. With
    ``--json`` the CLI names a refusal's by its name in lower case (``bad_input``)."""

    OK = 0
    FAILED = 1  # the job failed, a service is unreachable, an id is unknown
    BAD_INPUT = 2  # arguments, or a setting that cannot be used
    TIMEOUT = 3  # gave up waiting; the job goes on
    INTERRUPTED = 130


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


def described(error: ValidationError, label: Label) -> str:
    """The problems in plain words: the one there is, or each on a line of its own under
    ``invalid input:``."""
    told = problems(error, label, plain=True)
    if len(told) == 1:
        return told[0]
    return "invalid input:\n  " + "\n  ".join(told)


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "payload"


# What a terminal would act on instead of showing: C0 controls (ESC starts its escape
# sequences), DEL, C1 controls, bidi embeddings, overrides and isolates (they reorder what
# is shown, in a page as on a terminal), the Unicode line and paragraph separators, and
# lone surrogates (unprintable). Line feeds and tabs are apart: a message may keep them, a
# table cell may not.
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_IN_LINES = re.compile(f"[{_UNSAFE}]")
_UNSAFE_IN_A_LINE = re.compile(f"[\t\n{_UNSAFE}]")
_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    character = match.group()
    return _SHORT_ESCAPES.get(character) or f"\\u{ord(character):04x}"


def printable(value: Any, *, one_line: bool = True) -> str:
    """``value`` as text shown as it is, escaped the way a JSON string escapes.

    Each unsafe character becomes its JSON escape: ``\\n``, ``\\r``, ``\\t``, ``\\b``,
    ``\\f``, else ``\\u`` and four hex digits (ESC is ``\\u001b``, RLO ``\\u202e``), so
    ``printable`` of JSON text is still valid JSON, with the same data. Unsafe: C0 controls,
    DEL, C1 controls (U+0080-U+009F), bidi controls (U+061C, U+200E, U+200F, U+202A-U+202E,
    U+2066-U+2069), U+2028, U+2029 and lone surrogates. Backslashes are left as they are.
    ``one_line=False`` keeps line feeds and tabs (messages, indented JSON); a table cell
    or a title is one line. ``None`` is the empty string.
    """
    text = "" if value is None else str(value)
    unsafe = _UNSAFE_IN_A_LINE if one_line else _UNSAFE_IN_LINES
    return unsafe.sub(_escaped, text)
