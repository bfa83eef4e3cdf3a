"""Only what a user needs installs by default; the tests and the bench name their groups."""

from __future__ import annotations

import tomllib

from tests.support.readme import bash_blocks, section
from worker.testing.processes import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_a_user_gets_the_package_dependencies_only():
    assert PYPROJECT["tool"]["uv"]["default-groups"] == []


def test_the_test_group_brings_the_bench_and_the_bench_its_peers():
    groups = PYPROJECT["dependency-groups"]
    assert {"include-group": "bench"} in groups["dev"]
    assert {"include-group": "peers"} in groups["bench"]


def test_ci_runs_exactly_the_readme_test_command():
    (command,) = bash_blocks(section("Tests"))
    assert command.strip() == "uv run --group dev pytest"
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci_lines[-1] == command.strip()
    (first_mention,) = bash_blocks(section("dbjobs"))[1:2]  # the top's "Run the tests"
    assert first_mention.strip() == command.strip()


def test_the_bench_command_names_its_group():
    (command,) = bash_blocks(section("Performance"))
    assert command.strip() == "uv run --group bench python -m bench"
