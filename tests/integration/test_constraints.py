"""What the schema enforces, and how violations reach the caller as domain errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError, InvalidRequestError

from domain import schemas, services
from domain.db import utcnow
from domain.errors import AlreadyExists, ProfileNotFound, RunNotFound
from domain.models import Experiment, Metric, Profile, Run
from tests.support.db import (
    MakeUow,
    add_experiment,
    add_profile,
    add_run,
    add_tracked_run,
    count_rows,
    record,
)


async def _create(uow_factory: MakeUow, username: str, email: str) -> None:
    payload = schemas.CreateProfile(username=username, email=email, full_name="A B")
    async with uow_factory() as uow:
        await services.create_profile(uow, payload)


async def test_duplicate_username_is_already_exists_naming_the_field(uow_factory: MakeUow):
    await _create(uow_factory, "ada", "ada@example.com")
    with pytest.raises(AlreadyExists, match=r"^username is already taken"):
        await _create(uow_factory, "ada", "other@example.com")


async def test_duplicate_email_is_already_exists_naming_the_field(uow_factory: MakeUow):
    await _create(uow_factory, "ada", "ada@example.com")
    with pytest.raises(AlreadyExists, match=r"^email is already taken"):
        await _create(uow_factory, "grace", "ada@example.com")


async def test_update_to_a_taken_username_is_already_exists(uow_factory: MakeUow, session_factory):
    await add_profile(uow_factory, "ada")
    grace = await add_profile(uow_factory, "grace")
    payload = schemas.UpdateProfile.model_validate(
        {"profile_id": grace.id, "changes": {"username": "ada"}}
    )
    async with uow_factory() as uow:
        with pytest.raises(AlreadyExists, match="username"):
            await services.update_profile(uow, payload)
    async with session_factory() as session:
        stored = await session.get(Profile, grace.id)
        assert stored is not None
        assert (stored.username, stored.version) == ("grace", 1)


async def test_duplicate_experiment_name_per_owner_is_already_exists(uow_factory: MakeUow):
    ada, grace = await add_profile(uow_factory, "ada"), await add_profile(uow_factory, "grace")
    await add_experiment(uow_factory, ada.id, "mnist")
    await add_experiment(uow_factory, grace.id, "mnist")
    with pytest.raises(AlreadyExists, match="already has an experiment named 'mnist'"):
        await add_experiment(uow_factory, ada.id, "mnist")


async def test_experiment_for_unknown_owner_is_profile_not_found(uow_factory: MakeUow):
    with pytest.raises(ProfileNotFound, match="profile 77 not found"):
        await add_experiment(uow_factory, 77)


async def test_experiment_insert_breaking_the_foreign_key_is_not_mistaken_for_a_name_clash(
    uow_factory: MakeUow,
):
    async with uow_factory() as uow:
        # PostgreSQL names the constraint; SQLite only says which kind it is.
        foreign_key = "fk_experiments_owner_id_profiles|FOREIGN KEY constraint failed"
        with pytest.raises(IntegrityError, match=foreign_key):
            await uow.experiments.add(Experiment(owner_id=77, name="name", description=""))


async def test_metrics_for_unknown_run_is_run_not_found(uow_factory: MakeUow, session_factory):
    with pytest.raises(RunNotFound, match="run 404 not found"):
        await record(uow_factory, 404, range(3))
    assert await count_rows(session_factory, "metrics") == 0


async def test_deleting_a_profile_deletes_its_experiments_runs_and_metrics(
    uow_factory: MakeUow, session_factory
):
    run = await add_tracked_run(uow_factory)
    await record(uow_factory, run.id, range(10))
    other = await add_tracked_run(uow_factory, "grace")
    await record(uow_factory, other.id, range(4))
    async with session_factory() as session:
        owner_id = await session.scalar(
            select(Experiment.owner_id).where(Experiment.id == run.experiment_id)
        )
        await session.execute(delete(Profile).where(Profile.id == owner_id))
        await session.commit()
    counts = [await count_rows(session_factory, t) for t in ("experiments", "runs", "metrics")]
    assert counts == [1, 1, 4]


@pytest.mark.parametrize(
    ("table", "values", "constraint"),
    [
        ("experiments", {"status": "paused"}, "ck_experiments_status"),
        ("runs", {"status": "paused"}, "ck_runs_status"),
        ("metrics", {"step": -1}, "ck_metrics_step_non_negative"),
    ],
)
async def test_check_constraints_reject_bad_values(
    uow_factory: MakeUow, session_factory, table: str, values: dict[str, object], constraint: str
):
    owner = await add_profile(uow_factory)
    experiment = await add_experiment(uow_factory, owner.id)
    run = await add_run(uow_factory, experiment.id)
    rows = {
        "experiments": (Experiment, {"owner_id": owner.id, "name": "x", "description": ""}),
        "runs": (Run, {"experiment_id": experiment.id}),
        "metrics": (Metric, {"run_id": run.id, "name": "loss", "step": 0, "value": 1.0}),
    }
    model, base = rows[table]
    async with session_factory() as session:
        with pytest.raises(IntegrityError, match=constraint):
            await session.execute(insert(model).values(**{**base, **values}))


async def test_timestamps_are_timezone_aware(uow_factory: MakeUow, session_factory):
    run = await add_tracked_run(uow_factory)
    await record(uow_factory, run.id, range(1))
    async with session_factory() as session:
        profile = (await session.scalars(select(Profile))).one()
        experiment = (await session.scalars(select(Experiment))).one()
        stored_run = (await session.scalars(select(Run))).one()
        metric = (await session.scalars(select(Metric))).one()
    stamps = [
        profile.created_at,
        profile.updated_at,
        experiment.created_at,
        stored_run.started_at,
        stored_run.last_activity_at,
        metric.recorded_at,
    ]
    assert all(stamp.utcoffset() == timedelta(0) for stamp in stamps)


async def test_a_time_with_another_offset_comes_back_as_the_same_instant_in_utc(
    uow_factory: MakeUow, session_factory
):
    run = await add_tracked_run(uow_factory)
    sent = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    point = {"name": "loss", "step": 0, "value": 1.0, "recorded_at": sent}
    payload = schemas.RecordMetrics.model_validate({"run_id": run.id, "points": [point]})
    async with uow_factory() as uow:
        await services.record_metrics(uow, payload)
    async with session_factory() as session:
        stored = await session.scalar(select(Metric.recorded_at))
    assert stored == sent
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)


async def test_server_default_timestamps_are_timezone_aware(session_factory):
    async with session_factory() as session:
        await session.execute(
            insert(Profile).values(username="raw", email="raw@example.com", full_name="R")
        )
        created = await session.scalar(select(Profile.created_at))
    assert created is not None
    assert created.utcoffset() == timedelta(0)
    assert abs(utcnow() - created) < timedelta(minutes=5)  # read as UTC, not local time


async def test_lazy_loading_raises(uow_factory: MakeUow):
    run = await add_tracked_run(uow_factory)
    async with uow_factory() as uow:
        experiment = await uow.experiments.get(run.experiment_id)
        stored_run = await uow.runs.get(run.id)
        assert experiment is not None
        assert stored_run is not None
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = experiment.runs
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = stored_run.experiment
        runs, count = await uow.runs.newest_of(run.experiment_id, limit=10)
        assert ([r.id for r in runs], count) == ([run.id], 1)
