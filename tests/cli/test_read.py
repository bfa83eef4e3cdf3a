"""Read commands straight from PostgreSQL through the domain services."""

from __future__ import annotations

import pytest

from domain import schemas, services
from tests.cli.conftest import one_json


@pytest.fixture
async def tracker(uow_factory):
    """Two profiles; ada owns two experiments, one with two runs (one finished)."""
    async with uow_factory() as uow:
        ada = await services.create_profile(
            uow, schemas.CreateProfile(username="ada", email="ada@example.com", full_name="Ada")
        )
    async with uow_factory() as uow:
        bob = await services.create_profile(
            uow, schemas.CreateProfile(username="bob", email="bob@example.com", full_name="Bob")
        )
    ids = {"ada": ada.id, "bob": bob.id}
    for owner, name in (("ada", "mnist"), ("ada", "cifar"), ("bob", "imagenet")):
        async with uow_factory() as uow:
            experiment = await services.create_experiment(
                uow, schemas.CreateExperiment(owner_id=ids[owner], name=name)
            )
        ids[name] = experiment.id
    runs = []
    for seed in (1, 2):
        async with uow_factory() as uow:
            run = await services.start_run(
                uow, schemas.StartRun(experiment_id=ids["mnist"], seed=seed)
            )
        runs.append(run.id)
    async with uow_factory() as uow:
        await services.finish_run(
            uow, schemas.FinishRun(run_id=runs[0], status="failed", reason="diverged")
        )
    return {**ids, "runs": runs}


async def test_profile_get_as_json_and_as_a_table(cli, tracker):
    data = one_json(await cli("profiles", "get", str(tracker["ada"]), "--json"))
    assert (data["id"], data["username"], data["version"]) == (tracker["ada"], "ada", 1)
    table = await cli("profiles", "get", str(tracker["ada"]))
    assert table.exit_code == 0
    assert "ada@example.com" in table.stdout


async def test_an_unknown_id_is_a_clear_refusal(cli, tracker):
    for args in (["profiles", "get", "999"], ["experiments", "show", "999"]):
        result = await cli(*args, "--json")
        assert result.exit_code == 1
        assert result.stderr.strip().endswith("999 not found")
        assert one_json(result)["error"]["message"].endswith("999 not found")
        assert "Traceback" not in result.stderr


async def test_experiments_list_counts_runs_and_filters(cli, tracker):
    everything = one_json(await cli("experiments", "list", "--json"))["experiments"]
    assert [(e["name"], e["run_count"]) for e in everything] == [
        ("mnist", 2),
        ("cifar", 0),
        ("imagenet", 0),
    ]
    mine = await cli("experiments", "list", "--owner", str(tracker["bob"]), "--json")
    assert [e["name"] for e in one_json(mine)["experiments"]] == ["imagenet"]
    running = await cli("experiments", "list", "--state", "running", "--json")
    assert [e["name"] for e in one_json(running)["experiments"]] == ["mnist"]
    first = await cli("experiments", "list", "--limit", "1", "--json")
    assert len(one_json(first)["experiments"]) == 1
    table = await cli("experiments", "list")
    assert "imagenet" in table.stdout


async def test_experiments_list_refuses_bad_filters(cli, tracker):
    assert (await cli("experiments", "list", "--limit", "0")).exit_code == 2
    assert (await cli("experiments", "list", "--status", "paused")).exit_code == 2
    result = await cli("experiments", "list", "--owner", "0")
    assert result.exit_code == 2
    assert "--owner" in result.stderr


async def test_experiments_show_lists_the_runs(cli, tracker):
    data = one_json(await cli("experiments", "show", str(tracker["mnist"]), "--json"))
    assert data["name"] == "mnist"
    assert data["state"] == "running"
    runs = {run["id"]: run for run in data["runs"]}
    assert set(runs) == set(tracker["runs"])
    assert runs[tracker["runs"][0]]["state"] == "failed"
    assert runs[tracker["runs"][0]]["failure_reason"] == "diverged"
    table = await cli("experiments", "show", str(tracker["mnist"]))
    assert "diverged" in table.stdout


async def test_a_run_table_fits_80_columns_without_wrapping_its_times(cli, tracker):
    shown = await cli("experiments", "show", "1", COLUMNS="80")
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    runs = shown.stdout.split("run(s)")[1]
    assert len([line for line in runs.splitlines() if line.startswith("│")]) == 2  # one each
