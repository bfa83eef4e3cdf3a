"""The job registry is the one place a job is declared; everything else derives from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from domain import schemas
from domain.services import HANDLERS
from worker.registry import JOBS, Job, jobs_table
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "worker" / "registry.py"


@pytest.mark.parametrize("job", JOBS.values(), ids=lambda job: job.name)
def test_each_job_is_declared_consistently(job: Job[object]):
    fields = job.schema.model_fields
    assert job.use_case is not None or job.schema in HANDLERS
    assert set(job.arguments) <= set(fields)
    assert set(job.option_names) <= set(fields)
    assert job.job_id_field is None or job.job_id_field in fields
    assert set(job.defaults) <= set(fields)
    assert set(job.defaults.values()) <= set(Settings.model_fields)
    assert job.schema.__doc__, "the schema's docstring is the job's help"
    assert 0 < job.timeout <= 300


def test_every_command_has_a_job_and_every_job_one_name():
    assert len({job.name for job in JOBS.values()}) == len(JOBS)
    assert set(HANDLERS) == {job.schema for job in JOBS.values()}


def _job_name_literals(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    exported = {
        id(constant)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets)
        for constant in ast.walk(node.value)
    }
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and id(node) not in exported
        and isinstance(node.value, str)
        and node.value.split(":")[-1] in names
    ]


def test_no_job_name_is_written_outside_the_registry():
    names = {job.name for job in JOBS.values()} | {job.command for job in JOBS.values()}
    sources = [*ROOT.joinpath("worker").rglob("*.py"), *ROOT.joinpath("domain").rglob("*.py")]
    found = [
        literal
        for path in sources
        if path != REGISTRY
        for literal in _job_name_literals(path, names)
    ]
    assert found == []


def test_the_readme_lists_the_jobs_as_the_registry_declares_them():
    readme = (ROOT / "README.md").read_text()
    assert jobs_table() in readme, (
        "paste worker.registry.jobs_table() into README.md:\n" + jobs_table()
    )


@pytest.mark.parametrize(
    ("versions", "upgraders"),
    [((0, 1), {}), ((3, 2), {}), ((1, 2), {2: dict}), ((2, 3), {1: dict})],
)
def test_a_job_upgrades_only_versions_it_accepts(versions: tuple[int, int], upgraders: dict):
    accepts_from, version = versions
    with pytest.raises(ValueError, match="accepts versions"):
        Job("x", schemas.StartRun, version=version, accepts_from=accepts_from, upgraders=upgraders)


def test_a_payload_is_upgraded_version_by_version_where_it_changed():
    steps = {1: lambda p: {**p, "b": p["a"] + 1}, 3: lambda p: {**p, "c": p["b"] * 10}}
    job = Job("x", schemas.StartRun, version=4, upgraders=steps)
    assert job.upgraded({"a": 1}, 1) == {"a": 1, "b": 2, "c": 20}
    assert job.upgraded({"b": 5}, 2) == {"b": 5, "c": 50}
    assert job.upgraded({"b": 5}, 4) == {"b": 5}


def test_a_chunk_job_id_names_its_generation_and_no_other_id_does():
    from worker.registry import chunk_job_id, generation_of

    assert generation_of(chunk_job_id(42, 7, "key:with:colons")) == 42
    for other in ("generation:x:chunk:1:k", "gen-1:3", "generation:1:batch:1:k", "", "a:b"):
        assert generation_of(other) is None, other
