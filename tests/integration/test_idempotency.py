"""Re-running a use case, even concurrently, adds nothing the first run did not."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from domain import schemas, services
from domain.models import Profile
from domain.views import ChunkOutcome, GenerationPlan
from tests.support.db import MakeUow, add_tracked_run, count_rows, record


async def _plan(uow_factory: MakeUow, count: int = 250, chunk_size: int = 100) -> GenerationPlan:
    payload = schemas.GenerateProfiles(count=count, chunk_size=chunk_size, seed=7, key="batch")
    async with uow_factory() as uow:
        return await services.start_generation(uow, payload)


async def _chunk(uow_factory: MakeUow, generation_id: int, chunk_index: int) -> ChunkOutcome:
    payload = schemas.GenerateChunk(generation_id=generation_id, chunk_index=chunk_index)
    async with uow_factory() as uow:
        return await services.generate_chunk(uow, payload)


async def test_start_generation_twice_registers_one_generation(uow_factory, session_factory):
    first, second = await _plan(uow_factory), await _plan(uow_factory)
    assert second == first
    assert first.chunks == 3
    assert await count_rows(session_factory, "profile_generations") == 1


async def test_a_rerun_chunk_is_a_duplicate_that_inserts_nothing(uow_factory, session_factory):
    plan = await _plan(uow_factory)
    first = await _chunk(uow_factory, plan.generation_id, 2)
    assert (first.inserted, first.duplicate) == (50, False)
    rerun = await _chunk(uow_factory, plan.generation_id, 2)
    assert (rerun.inserted, rerun.duplicate) == (0, True)
    assert await count_rows(session_factory, "profiles") == 50


async def test_concurrent_runs_of_one_chunk_insert_it_once(uow_factory, session_factory):
    plan = await _plan(uow_factory)
    outcomes = await asyncio.gather(
        _chunk(uow_factory, plan.generation_id, 0), _chunk(uow_factory, plan.generation_id, 0)
    )
    assert sorted((o.inserted, o.duplicate) for o in outcomes) == [(0, True), (100, False)]
    assert await count_rows(session_factory, "profiles") == 100


async def test_all_chunks_complete_the_generation_with_distinct_profiles(
    uow_factory, session_factory
):
    plan = await _plan(uow_factory)
    outcomes = await asyncio.gather(
        *(_chunk(uow_factory, plan.generation_id, index) for index in range(plan.chunks))
    )
    assert sum(o.inserted for o in outcomes) == 250
    async with uow_factory() as uow:
        status = await services.generation_status(uow, plan.generation_id)
    assert (status.done, status.rows_done) == (True, 250)
    async with session_factory() as session:
        usernames = list(await session.scalars(select(Profile.username)))
    assert len(set(usernames)) == 250


async def test_two_generations_with_the_same_seed_do_not_collide(uow_factory, session_factory):
    plans = []
    for key in ("first", "second"):
        payload = schemas.GenerateProfiles(count=100, chunk_size=100, seed=7, key=key)
        async with uow_factory() as uow:
            plans.append(await services.start_generation(uow, payload))
    for plan in plans:
        assert (await _chunk(uow_factory, plan.generation_id, 0)).inserted == 100
    assert await count_rows(session_factory, "profiles") == 200


async def test_recording_the_same_metrics_twice_counts_duplicates(uow_factory, session_factory):
    run = await add_tracked_run(uow_factory)
    first = await record(uow_factory, run.id, range(10))
    second = await record(uow_factory, run.id, range(5, 15))
    assert (first.inserted, first.duplicates) == (10, 0)
    assert (second.received, second.inserted, second.duplicates) == (10, 5, 5)
    assert await count_rows(session_factory, "metrics") == 15


async def test_the_same_step_under_another_name_is_a_new_point(uow_factory, session_factory):
    run = await add_tracked_run(uow_factory)
    await record(uow_factory, run.id, range(10), name="loss")
    accuracy = await record(uow_factory, run.id, range(10), name="accuracy")
    assert (accuracy.inserted, accuracy.duplicates) == (10, 0)
    assert await count_rows(session_factory, "metrics") == 20


async def test_a_batch_past_the_parameter_limit_is_recorded_once(uow_factory, session_factory):
    """7,000 points are 35,000 parameters: past SQLite's 32,766 in one statement."""
    run = await add_tracked_run(uow_factory)
    first = await record(uow_factory, run.id, range(7_000))
    overlapping = await record(uow_factory, run.id, range(6_300, 7_800))
    assert (first.inserted, first.duplicates) == (7_000, 0)
    assert (overlapping.received, overlapping.inserted, overlapping.duplicates) == (1_500, 800, 700)
    assert await count_rows(session_factory, "metrics") == 7_800


async def test_concurrent_metric_batches_store_each_point_once(uow_factory, session_factory):
    run = await add_tracked_run(uow_factory)
    outcomes = await asyncio.gather(*(record(uow_factory, run.id, range(100)) for _ in range(3)))
    assert sum(o.inserted for o in outcomes) == 100
    assert sum(o.duplicates for o in outcomes) == 200
    assert await count_rows(session_factory, "metrics") == 100


async def test_finishing_a_run_twice_leaves_one_outcome(uow_factory, session_factory):
    run = await add_tracked_run(uow_factory)
    payload = schemas.FinishRun(run_id=run.id, status="completed")
    results = []
    for _ in range(2):
        async with uow_factory() as uow:
            results.append(await services.finish_run(uow, payload))
    assert [r.changed for r in results] == [True, False]
    assert results[1].run.ended_at == results[0].run.ended_at
    async with uow_factory() as uow:
        detail = await services.get_experiment(uow, run.experiment_id)
    assert detail.state == "completed"
