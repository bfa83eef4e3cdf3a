"""The fakes keep the promises the service tests rely on: commit or nothing, the ledger."""

from __future__ import annotations

import pytest

from domain import schemas, services
from domain.db import utcnow
from domain.models import Profile
from domain.repositories import JobStamp
from domain.uow import DuplicateJob
from tests.support.fakes import FakeStore, FakeUnitOfWork

ADA = schemas.CreateProfile(username="ada", email="ada@example.com", full_name="Ada L")


async def test_uncommitted_work_leaves_the_store_untouched(store: FakeStore):
    async with FakeUnitOfWork(store) as uow:
        await uow.profiles.add(Profile(**ADA.model_dump()))
        assert len(uow.profiles.session.rows["profiles"]) == 1
    assert store.rows["profiles"] == {}


async def test_a_second_commit_of_one_job_is_a_rolled_back_duplicate(store: FakeStore):
    stamp = JobStamp(job_id="j", function="create_profile", tries=1, started_at=utcnow())
    async with FakeUnitOfWork(store, stamp) as uow:
        await services.create_profile(uow, ADA)
    grace = ADA.model_copy(update={"username": "grace", "email": "grace@example.com"})
    async with FakeUnitOfWork(store, stamp) as uow:
        with pytest.raises(DuplicateJob):
            await services.create_profile(uow, grace)
    assert [row["username"] for row in store.rows["profiles"].values()] == ["ada"]
    assert store.commits == 1
