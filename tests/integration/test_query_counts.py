"""Reads and bulk writes cost a fixed number of statements, whatever the row count.

Counted on PostgreSQL: SQLite adds a BEGIN IMMEDIATE to each transaction and splits bulk
inserts to stay under its limit of parameters per statement.
"""

from __future__ import annotations

from domain import schemas, services
from domain.generator import generate_chunk
from tests.support.db import (
    MakeUow,
    StatementLog,
    add_experiment,
    add_profile,
    add_run,
    add_tracked_run,
    count_rows,
    postgresql_only,
)

pytestmark = postgresql_only

EXPERIMENTS, RUNS_EACH = 5, 3


async def _experiments_with_runs(uow_factory: MakeUow) -> tuple[int, list[int]]:
    """An owner's id and the ids of their experiments, each with a few runs."""
    owner = await add_profile(uow_factory)
    experiment_ids = []
    for index in range(EXPERIMENTS):
        experiment = await add_experiment(uow_factory, owner.id, f"exp-{index}")
        experiment_ids.append(experiment.id)
        for _ in range(RUNS_EACH):
            await add_run(uow_factory, experiment.id)
    return owner.id, experiment_ids


async def test_listing_experiments_with_run_counts_is_one_statement(
    uow_factory: MakeUow, statements: StatementLog
):
    owner_id, experiment_ids = await _experiments_with_runs(uow_factory)
    async with uow_factory() as uow:
        with statements.counting() as sent:
            listed = await services.list_experiments(
                uow, schemas.ListExperiments(owner_id=owner_id)
            )
    assert [(e.id, e.run_count) for e in listed] == [(i, RUNS_EACH) for i in experiment_ids]
    assert len(sent) == 1, sent


async def test_getting_an_experiment_with_its_runs_is_at_most_two_statements(
    uow_factory: MakeUow, statements: StatementLog
):
    _, experiment_ids = await _experiments_with_runs(uow_factory)
    wanted = experiment_ids[1]
    async with uow_factory() as uow:
        with statements.counting() as sent:
            detail = await services.get_experiment(uow, wanted)
    assert [run.experiment_id for run in detail.runs] == [wanted] * RUNS_EACH
    assert len(sent) <= 2, sent


async def test_recording_five_thousand_points_inserts_in_one_statement(
    uow_factory: MakeUow, statements: StatementLog, session_factory, engine
):
    run = await add_tracked_run(uow_factory)
    points = [{"name": "loss", "step": step, "value": 1 / (step + 1)} for step in range(5000)]
    payload = schemas.RecordMetrics.model_validate({"run_id": run.id, "points": points})
    async with uow_factory() as uow:
        with statements.counting() as sent:
            recorded = await services.record_metrics(uow, payload)
    assert (recorded.inserted, recorded.duplicates) == (5000, 0)
    assert await count_rows(session_factory, "metrics") == 5000
    on_postgresql = engine.dialect.name == "postgresql"  # a COPY, which this log cannot see
    assert len([sql for sql in sent if "INSERT INTO metrics" in sql]) == (0 if on_postgresql else 1)
    # PostgreSQL: one statement that marks the run active, checks it and the steps, then the
    # COPY. SQLite: the stamp, the run, the stored values of those steps, the insert.
    assert len(sent) == (1 if on_postgresql else 4), sent


async def test_bulk_profile_insert_sends_no_statement_per_row(
    uow_factory: MakeUow, statements: StatementLog, session_factory
):
    rows = generate_chunk(seed=3, generation_number=1, chunk_index=0, start=0, count=2000)
    async with uow_factory() as uow:
        with statements.counting() as sent:
            await uow.profiles.insert_many(rows)
        await uow.commit()
    assert await count_rows(session_factory, "profiles") == 2000
    assert len(sent) <= 1, sent
