"""``worker.text.printable``: what a terminal would act on is shown as a JSON-style escape."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from rich.console import Console
from rich.table import Table

from worker.cli.output import literal
from worker.text import printable


@pytest.mark.parametrize(
    ("given", "in_a_line", "in_lines"),
    [
        ("plain text", "plain text", "plain text"),
        ("é ☃ 日本 — ok", "é ☃ 日本 — ok", "é ☃ 日本 — ok"),
        ("closing [/] tag", "closing [/] tag", "closing [/] tag"),
        ("[bold red]ALERT[/]", "[bold red]ALERT[/]", "[bold red]ALERT[/]"),
        ("back\\slash \\x1b", "back\\slash \\x1b", "back\\slash \\x1b"),
        ("\x1b[31mred\x1b[0m", "\\u001b[31mred\\u001b[0m", "\\u001b[31mred\\u001b[0m"),
        ("\x1b]8;;http://x\x1b\\", "\\u001b]8;;http://x\\u001b\\", "\\u001b]8;;http://x\\u001b\\"),
        ("a\rb", "a\\rb", "a\\rb"),
        ("two\nlines", "two\\nlines", "two\nlines"),
        ("tab\there", "tab\\there", "tab\there"),
        (
            "\x00\x07\x08\x0b\x0c\x1f",
            "\\u0000\\u0007\\b\\u000b\\f\\u001f",
            "\\u0000\\u0007\\b\\u000b\\f\\u001f",
        ),
        ("del\x7f", "del\\u007f", "del\\u007f"),
        (
            "c1 \x80 \x85 \x9b \x9f",
            "c1 \\u0080 \\u0085 \\u009b \\u009f",
            "c1 \\u0080 \\u0085 \\u009b \\u009f",
        ),
        (
            "\u202aa\u202bb\u202cc\u202dd\u202ee",
            "\\u202aa\\u202bb\\u202cc\\u202dd\\u202ee",
            "\\u202aa\\u202bb\\u202cc\\u202dd\\u202ee",
        ),
        (
            "\u2066a\u2067b\u2068c\u2069",
            "\\u2066a\\u2067b\\u2068c\\u2069",
            "\\u2066a\\u2067b\\u2068c\\u2069",
        ),
        ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c", "\\u200e\\u200f\\u061c"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029", "line\\u2028para\\u2029"),
        ("lone \ud800", "lone \\ud800", "lone \\ud800"),
        (None, "", ""),
        (42, "42", "42"),
    ],
)
def test_printable(given, in_a_line, in_lines):
    assert printable(given) == in_a_line
    assert printable(given, one_line=False) == in_lines


@pytest.mark.parametrize(
    "data",
    [
        {"red": "\x1b[31mred\x1b[0m", "bidi": "\u202eevil", "c1": "\x7f\x85\x9b"},
        {"nested": ["a\rb", {"two": "two\nlines"}], "n": 1, "none": None},
    ],
)
def test_printable_json_is_still_the_same_json(data):
    for text in (json.dumps(data, ensure_ascii=False), json.dumps(data, indent=2)):
        assert json.loads(printable(text, one_line=False)) == data
    compact = printable(json.dumps(data, ensure_ascii=False))
    assert json.loads(compact) == data
    assert printable(compact) == compact


def test_literal_text_is_never_markup_or_emoji():
    table = Table("value")
    for value in ("closing [/] tag", "[link=https://evil.example]click[/link]", ":smile:"):
        table.add_row(literal(value))
    screen = StringIO()
    Console(file=screen, width=80, color_system=None).print(table)
    for value in ("closing [/] tag", "[link=https://evil.example]click[/link]", ":smile:"):
        assert value in screen.getvalue()
