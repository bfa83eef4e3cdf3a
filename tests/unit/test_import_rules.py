"""domain/ is the core: it must never depend on the delivery (worker, arq, redis) or on
migrations."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FORBIDDEN = frozenset({"worker", "arq", "redis", "migrations"})


def _imported_roots(source: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def _domain_modules() -> list[Path]:
    return sorted(DOMAIN.rglob("*.py"))


def test_the_domain_package_has_modules_to_check():
    names = {path.relative_to(DOMAIN).as_posix() for path in _domain_modules()}
    assert {"uow.py", "services/tracker.py", "repositories/profiles.py"} <= names


@pytest.mark.parametrize(
    "module", _domain_modules(), ids=lambda p: p.relative_to(DOMAIN).as_posix()
)
def test_domain_module_imports_no_delivery_code(module: Path):
    forbidden = _imported_roots(module.read_text()) & FORBIDDEN
    assert not forbidden, f"{module.name} imports {sorted(forbidden)}"


@pytest.mark.parametrize(
    "source",
    [
        "import arq",
        "import redis.asyncio as r",
        "from worker.jobs import JOBS",
        "def f():\n    from migrations import env",
        "if True:\n    import worker.main",
    ],
)
def test_the_check_catches_every_import_form(source: str):
    assert _imported_roots(source) & FORBIDDEN
