"""ARCHITECTURE.md stays true: every file and folder it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "ARCHITECTURE.md"
# A name in backquotes that ends as a file or a folder does: `worker/ops/actions.py`,
# `ops/actions.py` (within worker/), `worker/web/templates/`, `job_routes.py` (beside the
# name before it on the same line).
NAMED = re.compile(r"`([\w./-]+(?:\.py|\.md|/))`")


def named_paths(text: str) -> list[tuple[str, Path | None]]:
    """Each name with the file it points to (None: found nowhere)."""
    found = []
    for line in text.splitlines():
        folder = None
        for name in NAMED.findall(line):
            path = _resolve(name, folder)
            if path is not None and path.is_file() and "/" in name:
                folder = path.parent
            found.append((name, path))
    return found


def _resolve(name: str, folder: Path | None) -> Path | None:
    bases = [ROOT, ROOT / "worker", *([folder] if folder else [])]
    return next((base / name for base in bases if (base / name).exists()), None)


def test_every_path_the_map_names_exists():
    named = named_paths(MAP.read_text())
    assert len(named) > 30  # the map does name the code
    assert [name for name, path in named if path is None] == []


def test_the_check_finds_a_name_that_is_gone():
    text = "see `worker/ops/actions.py` and `gone.py`, then `worker/nowhere/`"
    missing = [name for name, path in named_paths(text) if path is None]
    assert missing == ["gone.py", "worker/nowhere/"]


def test_the_map_stays_short():
    assert len(MAP.read_text().splitlines()) < 150
