"""Profile use cases on fakes: outcomes, errors, and how often each commits."""

from __future__ import annotations

import pytest

from domain import schemas, services
from domain.errors import (
    AlreadyExists,
    GenerationNotFound,
    InvalidRequest,
    ProfileNotFound,
    StaleVersion,
)
from tests.support.fake_steps import Tracker
from tests.support.fakes import FakeStore


def _update(profile_id: int, expected_version: int | None = None, **changes: str):
    return schemas.UpdateProfile.model_validate(
        {"profile_id": profile_id, "changes": changes, "expected_version": expected_version}
    )


async def test_create_profile_commits_once_and_returns_the_stored_profile(tracker: Tracker):
    payload = schemas.CreateProfile(username="ada", email="ada@example.com", full_name="Ada L")
    async with tracker.uow() as uow:
        created = await services.create_profile(uow, payload)
    assert uow.commits == 1
    assert (created.username, created.version, created.bio) == ("ada", 1, "")
    assert created.created_at.tzinfo is not None
    assert tracker.store.rows["profiles"][created.id]["email"] == "ada@example.com"


async def test_create_profile_with_a_taken_username_commits_nothing(tracker: Tracker):
    await tracker.profile("ada")
    payload = schemas.CreateProfile(username="ada", email="other@example.com", full_name="A")
    async with tracker.uow() as uow:
        with pytest.raises(AlreadyExists, match="username"):
            await services.create_profile(uow, payload)
    assert uow.commits == 0
    assert len(tracker.store.rows["profiles"]) == 1


async def test_get_profile_reads_without_committing(tracker: Tracker):
    created = await tracker.profile()
    async with tracker.uow() as uow:
        fetched = await services.get_profile(uow, created.id)
    assert fetched == created
    assert uow.commits == 0


async def test_get_unknown_profile_is_profile_not_found(tracker: Tracker):
    async with tracker.uow() as uow:
        with pytest.raises(ProfileNotFound, match="profile 42 not found"):
            await services.get_profile(uow, 42)


async def test_partial_update_changes_only_given_fields_and_bumps_version(tracker: Tracker):
    created = await tracker.profile()
    async with tracker.uow() as uow:
        updated = await services.update_profile(uow, _update(created.id, bio="Analyst"))
    assert uow.commits == 1
    assert updated.bio == "Analyst"
    assert (updated.username, updated.email, updated.full_name) == (
        created.username,
        created.email,
        created.full_name,
    )
    assert updated.version == created.version + 1
    assert updated.updated_at >= created.updated_at
    assert tracker.store.rows["profiles"][created.id]["version"] == 2


async def test_update_with_the_current_version_succeeds(tracker: Tracker):
    created = await tracker.profile()
    async with tracker.uow() as uow:
        updated = await services.update_profile(uow, _update(created.id, 1, full_name="Ada K"))
    assert (updated.full_name, updated.version) == ("Ada K", 2)


async def test_update_with_a_stale_version_is_refused_and_changes_nothing(tracker: Tracker):
    created = await tracker.profile()
    async with tracker.uow() as uow:
        await services.update_profile(uow, _update(created.id, bio="first"))
    async with tracker.uow() as uow:
        with pytest.raises(StaleVersion, match="version 2, not the expected version 1") as caught:
            await services.update_profile(uow, _update(created.id, 1, bio="second"))
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert uow.commits == 0
    row = tracker.store.rows["profiles"][created.id]
    assert (row["bio"], row["version"]) == ("first", 2)


async def test_update_unknown_profile_is_profile_not_found(tracker: Tracker):
    async with tracker.uow() as uow:
        with pytest.raises(ProfileNotFound):
            await services.update_profile(uow, _update(7, bio="x"))
    assert uow.commits == 0


async def test_update_to_a_taken_email_is_already_exists(tracker: Tracker):
    await tracker.profile("ada")
    grace = await tracker.profile("grace")
    async with tracker.uow() as uow:
        with pytest.raises(AlreadyExists, match="email"):
            await services.update_profile(uow, _update(grace.id, email="ada@example.com"))
    assert tracker.store.rows["profiles"][grace.id]["email"] == "grace@example.com"


async def _start(tracker: Tracker, count: int, chunk_size: int, key: str = "k"):
    payload = schemas.GenerateProfiles(count=count, chunk_size=chunk_size, seed=3, key=key)
    async with tracker.uow() as uow:
        return await services.start_generation(uow, payload)


async def _chunk(tracker: Tracker, generation_id: int, chunk_index: int):
    payload = schemas.GenerateChunk(generation_id=generation_id, chunk_index=chunk_index)
    async with tracker.uow() as uow:
        return await services.generate_chunk(uow, payload)


async def test_start_generation_plans_chunks_and_is_idempotent_on_its_key(tracker: Tracker):
    plan = await _start(tracker, count=250, chunk_size=100)
    again = await _start(tracker, count=250, chunk_size=100)
    assert (plan.total, plan.chunk_size, plan.chunks) == (250, 100, 3)
    assert again.generation_id == plan.generation_id
    assert len(tracker.store.rows["generations"]) == 1


async def test_start_generation_refuses_a_key_reused_for_another_request(tracker: Tracker):
    await _start(tracker, count=250, chunk_size=100)
    with pytest.raises(InvalidRequest, match="used for another request"):
        await _start(tracker, count=260, chunk_size=100)


async def test_generate_chunk_inserts_the_chunk_then_reports_a_rerun_as_duplicate(
    tracker: Tracker, store: FakeStore
):
    plan = await _start(tracker, count=250, chunk_size=100)
    last = await _chunk(tracker, plan.generation_id, 2)
    rerun = await _chunk(tracker, plan.generation_id, 2)
    assert (last.inserted, last.duplicate) == (50, False)
    assert (rerun.inserted, rerun.duplicate) == (0, True)
    assert len(store.rows["profiles"]) == 50


async def test_generate_chunk_refuses_an_out_of_range_chunk(tracker: Tracker, store: FakeStore):
    plan = await _start(tracker, count=250, chunk_size=100)
    with pytest.raises(InvalidRequest, match="chunk_index 3 is out of range"):
        await _chunk(tracker, plan.generation_id, 3)
    assert store.rows["profiles"] == {}
    assert store.rows["chunks"] == {}


async def test_generate_chunk_of_an_unknown_generation_is_not_found(tracker: Tracker):
    with pytest.raises(GenerationNotFound):
        await _chunk(tracker, 99, 0)


async def test_generation_status_counts_committed_chunks(tracker: Tracker):
    plan = await _start(tracker, count=250, chunk_size=100)
    await _chunk(tracker, plan.generation_id, 0)
    await _chunk(tracker, plan.generation_id, 2)
    async with tracker.uow() as uow:
        status = await services.generation_status(uow, plan.generation_id)
    assert (status.chunks, status.chunks_done, status.rows_done) == (3, 2, 150)
    assert not status.done


async def test_list_profiles_reads_newest_first_by_prefix_without_committing(tracker: Tracker):
    for username in ("ada", "grace", "adam", "adele"):
        await tracker.profile(username)
    query = schemas.ListProfiles(username="ad", email="ada", limit=5)
    async with tracker.uow() as uow:
        listed = await services.list_profiles(uow, query)
    assert [view.username for view in listed] == ["adam", "ada"]
    assert uow.commits == 0
    async with tracker.uow() as uow:
        newest = await services.list_profiles(uow, schemas.ListProfiles(limit=2))
    assert [view.username for view in newest] == ["adele", "adam"]
