"""Who may import whom.

domain/ is the core: it must never depend on the delivery (worker, arq, redis) or on
migrations. Within worker/, each room imports only the rooms ``MAY_IMPORT`` lists for it.
bench/ uses worker/ and domain/, never the tests. A test module takes shared code from
tests/support (or fixtures' helpers from its own folder's conftest), never from another
test module or another folder.
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


WORKER = ROOT / "worker"
ROOMS = ("runtime", "ops", "cli", "web", "demo", "testing")  # worker's subpackages
MAIN = "main"  # worker/main.py: arq's WorkerSettings, the worker process's composition root
SHARED = "shared"  # worker's other top-level modules: settings, registry, bootstrap...
# Who may import whom within worker/: a module of the room on the left imports its own room,
# the domain, libraries and the rooms listed, nothing else of worker/. So nothing imports
# the CLI (Typer and its modules), no production room the harness for tests (testing).
MAY_IMPORT: dict[str, frozenset[str]] = {
    SHARED: frozenset(),
    "ops": frozenset({SHARED}),
    "runtime": frozenset({SHARED, "ops"}),
    MAIN: frozenset({SHARED, "ops", "runtime"}),
    "web": frozenset({SHARED, "ops"}),
    "cli": frozenset({SHARED, "ops", "web", MAIN, "demo"}),  # dbjobs serve, worker, demo
    "demo": frozenset({SHARED, "ops", "runtime", MAIN, "testing"}),
    "testing": frozenset({SHARED, "ops", "runtime", MAIN, "demo"}),
}
PRODUCTION = (SHARED, "ops", "runtime", MAIN, "web", "cli")


def _room(module: str) -> str | None:
    """The room of worker/ that a dotted name (a module, or a name in one) belongs to."""
    parts = module.split(".")
    if parts[0] != "worker":
        return None
    if len(parts) > 1 and parts[1] in (*ROOMS, MAIN):
        return parts[1]
    return SHARED


def _trespasses(room: str, source: str) -> list[str]:
    """What ``source``, a module of ``room``, imports from the rooms it may not import."""
    allowed = MAY_IMPORT[room] | {room}
    return sorted(
        module
        for module in _imported_modules(source)
        if (other := _room(module)) is not None and other not in allowed
    )


def _worker_modules() -> list[Path]:
    return sorted(WORKER.rglob("*.py"))


def _room_of(path: Path) -> str:
    room = _room(".".join(path.relative_to(ROOT).with_suffix("").parts))
    assert room is not None
    return room


def test_the_table_names_every_room_of_worker():
    subpackages = {path.parent.name for path in WORKER.glob("*/__init__.py")}
    assert subpackages == set(ROOMS)
    assert (WORKER / f"{MAIN}.py").exists()
    assert set(MAY_IMPORT) == {*ROOMS, MAIN, SHARED}
    assert all("cli" not in MAY_IMPORT[room] for room in MAY_IMPORT)
    assert all("testing" not in MAY_IMPORT[room] for room in PRODUCTION)


@pytest.mark.parametrize(
    "module", _worker_modules(), ids=lambda p: p.relative_to(WORKER).as_posix()
)
def test_each_module_of_worker_imports_only_the_rooms_it_may(module: Path):
    room = _room_of(module)
    allowed = sorted(MAY_IMPORT[room])
    assert _trespasses(room, module.read_text()) == [], f"{room} may import only {allowed}"


@pytest.mark.parametrize(
    ("room", "source"),
    [
        (SHARED, "from worker.ops.enqueue import enqueue_many"),
        (SHARED, "def f():\n    from worker.runtime.prometheus import QUARANTINED"),
        (SHARED, "from worker import main"),
        ("ops", "from worker.runtime.heartbeats import Heartbeat"),
        ("ops", "def f():\n    from worker.cli import output"),
        ("ops", "import worker.web.app"),
        ("ops", "from worker import demo"),
        ("ops", "if TYPE_CHECKING:\n    from worker.testing.scratch import Owner"),
        ("runtime", "from worker.cli.output import say"),
        ("runtime", "from worker.web import app"),
        ("runtime", "from worker.main import build_worker_settings"),
        ("runtime", "async def f():\n    import worker.testing.inprocess"),
        (MAIN, "from worker.testing import inprocess"),
        (MAIN, "from worker.cli import app"),
        ("web", "from worker.cli import output"),
        ("web", "import worker.runtime.leases as leases"),
        ("web", "from worker.demo import run"),
        ("web", "def f():\n    from worker.testing.inprocess import fake_pool"),
        ("web", "from worker.main import WorkerSettings"),
        ("cli", "from worker.testing.scratch import Owner"),
        ("cli", "from worker.runtime.leases import LeaseKeeper"),
        ("demo", "from worker.cli.output import say"),
        ("demo", "from worker.web.app import create_app"),
        ("testing", "from worker.cli import app"),
        ("testing", "def f():\n    import worker.web.app"),
    ],
)
def test_the_rooms_check_catches_every_forbidden_import(room: str, source: str):
    assert _trespasses(room, source)


@pytest.mark.parametrize(
    ("room", "source"),
    [
        (SHARED, "from worker.settings import Settings\nimport domain.db\nimport arq"),
        ("ops", "from worker.registry import JOBS\nfrom worker.ops.workers import Roster"),
        ("runtime", "from worker.ops.queue_state import lease_value"),
        ("web", "from worker.ops.job_state import Outcome\nfrom worker.web import paging"),
        ("cli", "from worker.web.app import create_app\nfrom worker.main import prepare_worker"),
        ("demo", "from worker.testing.inprocess import fake_pool"),
        ("web", "from worker.client import x\nimport worker.clinic"),  # not the CLI
    ],
)
def test_the_rooms_check_allows_what_the_table_allows(room: str, source: str):
    assert _trespasses(room, source) == []


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
