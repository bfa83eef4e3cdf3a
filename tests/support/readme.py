"""The README's sections and their ```bash blocks, as a reader copies them."""

from __future__ import annotations

import re

from worker.testing.processes import ROOT

README = ROOT / "README.md"


def section(title: str) -> str:
    """The text under the heading ``title`` (any level), up to the next heading of any level."""
    text = README.read_text()
    heading = re.search(rf"^#+ {re.escape(title)}\n", text, re.MULTILINE)
    assert heading, f"README has no section {title!r}"
    rest = text[heading.end() :]
    following = re.search(r"^#+ ", rest, re.MULTILINE)
    return rest[: following.start()] if following else rest


def bash_blocks(text: str) -> list[str]:
    """Each ```bash block of ``text``, its lines joined where they end with a backslash."""
    blocks = re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    return [block.replace("\\\n", " ") for block in blocks]
