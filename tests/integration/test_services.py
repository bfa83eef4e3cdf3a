"""Use cases end to end on PostgreSQL: what they store and what they return."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import schemas, services
from domain.db import utcnow
from domain.errors import InvalidTransition, StaleVersion
from domain.models import Profile
from tests.support.db import MakeUow, add_experiment, add_profile, add_run


async def test_create_then_get_profile(uow_factory: MakeUow):
    created = await add_profile(uow_factory, "ada")
    async with uow_factory() as uow:
        fetched = await services.get_profile(uow, created.id)
    assert fetched == created
    assert (fetched.username, fetched.version) == ("ada", 1)
    assert fetched.created_at.tzinfo is not None


async def test_update_profile_is_partial_and_versioned(uow_factory: MakeUow, session_factory):
    created = await add_profile(uow_factory)
    payload = schemas.UpdateProfile.model_validate(
        {"profile_id": created.id, "changes": {"bio": "Analyst"}, "expected_version": 1}
    )
    async with uow_factory() as uow:
        updated = await services.update_profile(uow, payload)
    assert (updated.bio, updated.version, updated.email) == ("Analyst", 2, created.email)
    assert updated.updated_at > created.updated_at
    async with uow_factory() as uow:
        with pytest.raises(StaleVersion):
            await services.update_profile(uow, payload)
    async with session_factory() as session:
        stored = await session.get(Profile, created.id)
        assert stored is not None
        assert (stored.bio, stored.version) == ("Analyst", 2)


async def test_runs_settle_their_experiment(uow_factory: MakeUow):
    owner = await add_profile(uow_factory)
    experiment = await add_experiment(uow_factory, owner.id)
    first, second = (
        await add_run(uow_factory, experiment.id),
        await add_run(uow_factory, experiment.id),
    )
    for run, status in ((first, "failed"), (second, "completed")):
        async with uow_factory() as uow:
            await services.finish_run(uow, schemas.FinishRun(run_id=run.id, status=status))
        async with uow_factory() as uow:
            detail = await services.get_experiment(uow, experiment.id)
        assert detail.state == ("running" if run is first else "completed")
    assert [(r.id, r.state) for r in detail.runs] == [
        (first.id, "failed"),
        (second.id, "completed"),
    ]
    async with uow_factory() as uow:
        with pytest.raises(InvalidTransition):
            await services.finish_run(uow, schemas.FinishRun(run_id=first.id, status="completed"))


async def test_fail_stale_runs_uses_the_stored_activity(uow_factory: MakeUow):
    owner = await add_profile(uow_factory)
    experiment = await add_experiment(uow_factory, owner.id)
    run = await add_run(uow_factory, experiment.id)
    window = schemas.FailStaleRuns(idle_seconds=60)
    soon, later = run.started_at + timedelta(seconds=30), utcnow() + timedelta(minutes=2)
    async with uow_factory() as uow:
        assert (await services.fail_stale_runs(uow, window, now=soon)).run_ids == []
    async with uow_factory() as uow:
        assert (await services.fail_stale_runs(uow, window, now=later)).run_ids == [run.id]
    async with uow_factory() as uow:
        detail = await services.get_experiment(uow, experiment.id)
    assert detail.state == "failed"
    assert detail.runs[0].failure_reason == "no metric for more than 0:01:00"
