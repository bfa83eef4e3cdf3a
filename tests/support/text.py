"""Text that tries to be more than text: Rich markup, terminal escapes, bidi overrides.

Each constant is stored somewhere by a test; ``SHOWN`` is how it must look in a table.
"""

from __future__ import annotations

import re
from typing import Any

CLOSING = "closing [/] tag"
ALERT = "[bold red]ALERT[/]"
LINK = "[link=https://evil.example]click[/link]"
RED = "\x1b[31mred\x1b[0m"
HYPERLINK = "\x1b]8;;http://x\x1b\\"
RETURN = "a\rb"
REVERSED = "\u202eevil"
TWO_LINES = "two\nlines"
# How each one must look in a table: escaped the way a JSON string escapes it.
SHOWN = {
    CLOSING: CLOSING,
    ALERT: ALERT,
    LINK: LINK,
    RED: "\\u001b[31mred\\u001b[0m",
    HYPERLINK: "\\u001b]8;;http://x\\u001b\\",
    RETURN: "a\\rb",
    REVERSED: "\\u202eevil",
    TWO_LINES: "two\\nlines",
}
NAMES = list(SHOWN)
BIO = f"{RED}\n{HYPERLINK} {RETURN}"
REASON = f"{HYPERLINK}\n│ 99 │ completed │ {REVERSED}"
JOB_ID = "[/]x"
ERROR_TYPE = "[bold red]Boom[/]"
ERROR_MESSAGE = f"{RED} {LINK}\nfake row {REVERSED}"
# Line feeds aside, nothing a terminal would act on.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def assert_clean(result: Any) -> None:
    assert "Traceback" not in result.stderr
    assert not UNSAFE.findall(result.stdout), result.stdout
    assert not UNSAFE.findall(result.stderr), result.stderr


def assert_shown(result: Any, *texts: str) -> None:
    assert result.exit_code == 0, result.stderr
    assert_clean(result)
    for text in texts:
        assert SHOWN.get(text, text) in result.stdout
