"""Who may import whom.

domain/ is the core: it must never depend on the delivery (worker, arq, redis) or on
migrations. bench/ uses worker/ and domain/, never the tests. A test module takes shared
code from tests/support (or fixtures' helpers from its own folder's conftest), never from
another test module or another folder.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "domain"
FORBIDDEN = frozenset({"worker", "arq", "redis", "migrations"})
FIRST_PARTY = frozenset({"bench", "domain", "migrations", "tests", "worker"})


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
        "from worker.registry import JOBS",
        "def f():\n    from migrations import env",
        "if True:\n    import worker.main",
    ],
)
def test_the_check_catches_every_import_form(source: str):
    assert _imported_roots(source) & FORBIDDEN


def _imported_modules(source: str) -> set[str]:
    """Every module named by an import, ``from tests import x`` giving ``tests.x``."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def _bench_strays(source: str) -> set[str]:
    """The project packages other than bench, worker and domain that ``source`` imports."""
    return _imported_roots(source) & FIRST_PARTY - {"bench", "domain", "worker"}


def test_the_bench_uses_only_worker_and_domain():
    found = [
        f"{path.relative_to(ROOT)}: {root}"
        for path in sorted((ROOT / "bench").rglob("*.py"))
        for root in _bench_strays(path.read_text())
    ]
    assert found == []


def test_the_bench_check_catches_the_tests_and_allows_worker():
    assert _bench_strays("from tests.support import processes") == {"tests"}
    assert _bench_strays("from worker.testing.scratch import Owner\nimport domain.models") == set()


def _shortcuts(folder: tuple[str, ...], source: str) -> list[str]:
    """The test code ``source`` (a module in ``folder``) imports from outside tests/support
    and its own folder's conftest."""
    own_conftest = ".".join((*folder, "conftest"))
    return sorted(
        module
        for module in _imported_modules(source)
        if module.split(".")[0] == "tests"
        and not module.startswith(("tests.support.", f"{own_conftest}."))
    )


def test_tests_share_code_through_tests_support_only():
    found = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for module in _shortcuts(path.parent.relative_to(ROOT).parts, path.read_text())
    ]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "from tests.cli.conftest import one_json",
        "from tests.jobs import support",
        "import tests.unit.test_demo_target",
        "def f():\n    from tests import services",
    ],
)
def test_the_tests_check_catches_every_shortcut(source: str):
    assert _shortcuts(("tests", "e2e"), source)


def test_the_tests_check_allows_support_and_the_own_conftest():
    source = "from tests.support.db import MakeUow\nfrom tests.cli.conftest import one_json"
    assert _shortcuts(("tests", "cli"), source) == []


def _cli_imports(source: str) -> list[str]:
    return sorted(m for m in _imported_modules(source) if m.split(".")[:2] == ["worker", "cli"])


def test_only_the_cli_imports_the_cli():
    """The shared core, the console and the demo never load the CLI (Typer and its modules)."""
    worker = ROOT / "worker"
    found = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted(worker.rglob("*.py"))
        if path.relative_to(worker).parts[0] != "cli"
        for module in _cli_imports(path.read_text())
    ]
    assert found == []


def test_the_cli_check_catches_every_import_form():
    for source in ("from worker.cli.output import printable", "from worker import cli"):
        assert _cli_imports(source)
    assert _cli_imports("from worker.client import x\nimport worker.clinic") == []


def _module_path(module: str) -> Path | None:
    """The file of a first-party module of ``worker``, or None."""
    if module.split(".")[0] != "worker":
        return None
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _reached_from(folder: Path) -> set[str]:
    """Every ``worker`` module that the modules in ``folder`` import, directly or through
    other ``worker`` modules, at their top or inside a function."""
    seen: set[str] = set()
    pending = sorted(folder.rglob("*.py"))
    while pending:
        for imported in _imported_modules(pending.pop().read_text()):
            # ``from worker.x import y``: y is a module or a name in worker.x
            for module in (imported, imported.rpartition(".")[0]):
                path = _module_path(module)
                if path is not None and module not in seen:
                    seen.add(module)
                    pending.append(path)
    return seen


def test_the_console_never_imports_the_cli():
    reached = _reached_from(ROOT / "worker" / "web")
    assert {"worker.text", "worker.ops.actions"} <= reached  # the check follows imports
    assert sorted(name for name in reached if name.startswith("worker.cli")) == []
