"""Text from the database or Redis (names, bios, job ids, error messages) as people are
shown it, by the CLI on a terminal and by the console in a page: exactly as stored, except
the characters a terminal or a browser would act on instead of showing."""

from __future__ import annotations

import re
from typing import Any

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
