"""Profiles and generations on SQLite: the same use cases as on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from domain import schemas, services
from domain.errors import AlreadyExists, StaleVersion
from domain.models import Profile
from tests.sqlite.helpers import UowFactory


def _new(username: str, email: str | None = None) -> schemas.CreateProfile:
    return schemas.CreateProfile(
        username=username, email=email or f"{username}@example.com", full_name="A Person"
    )


async def _count_profiles(uow_factory: UowFactory) -> int:
    async with uow_factory() as uow:
        return await uow.profiles.count()


async def test_create_then_update_bumps_version(sqlite_uow: UowFactory) -> None:
    async with sqlite_uow() as uow:
        created = await services.create_profile(uow, _new("ada"))
    changes = schemas.ProfileChanges(bio="Analyst")
    async with sqlite_uow() as uow:
        updated = await services.update_profile(
            uow, schemas.UpdateProfile(profile_id=created.id, changes=changes, expected_version=1)
        )
    async with sqlite_uow() as uow:
        stored = await services.get_profile(uow, created.id)
    assert (stored.bio, stored.version) == ("Analyst", 2)
    assert stored.updated_at == updated.updated_at > created.updated_at


async def test_stale_expected_version_is_refused(sqlite_uow: UowFactory) -> None:
    async with sqlite_uow() as uow:
        created = await services.create_profile(uow, _new("ada"))
    stale = schemas.UpdateProfile(
        profile_id=created.id, changes=schemas.ProfileChanges(bio="x"), expected_version=7
    )
    with pytest.raises(StaleVersion):
        async with sqlite_uow() as uow:
            await services.update_profile(uow, stale)


@pytest.mark.parametrize(
    ("second", "field"),
    [(_new("ada", "other@example.com"), "username"), (_new("grace", "ada@example.com"), "email")],
)
async def test_taken_unique_field_is_a_domain_error(
    sqlite_uow: UowFactory, second: schemas.CreateProfile, field: str
) -> None:
    async with sqlite_uow() as uow:
        await services.create_profile(uow, _new("ada"))
    with pytest.raises(AlreadyExists, match=field):
        async with sqlite_uow() as uow:
            await services.create_profile(uow, second)
    assert await _count_profiles(sqlite_uow) == 1


async def test_update_to_a_taken_username_is_a_domain_error(sqlite_uow: UowFactory) -> None:
    async with sqlite_uow() as uow:
        await services.create_profile(uow, _new("ada"))
        grace = await services.create_profile(uow, _new("grace"))
    clash = schemas.UpdateProfile(
        profile_id=grace.id, changes=schemas.ProfileChanges(username="ada")
    )
    with pytest.raises(AlreadyExists, match="username"):
        async with sqlite_uow() as uow:
            await services.update_profile(uow, clash)
    async with sqlite_uow() as uow:
        assert (await services.get_profile(uow, grace.id)).username == "grace"


async def test_generation_chunks_are_idempotent(sqlite_uow: UowFactory) -> None:
    request = schemas.GenerateProfiles(count=2_500, chunk_size=1_000, seed=7, key="g1")
    async with sqlite_uow() as uow:
        plan = await services.start_generation(uow, request)
    assert plan.chunks == 3
    outcomes = []
    for index in (0, 1, 2, 1):  # chunk 1 delivered twice
        chunk = schemas.GenerateChunk(generation_id=plan.generation_id, chunk_index=index)
        async with sqlite_uow() as uow:
            outcomes.append(await services.generate_chunk(uow, chunk))
    assert [(o.inserted, o.duplicate) for o in outcomes] == [
        (1_000, False),
        (1_000, False),
        (500, False),
        (0, True),
    ]
    async with sqlite_uow() as uow:
        status = await services.generation_status(uow, plan.generation_id)
    assert (status.chunks_done, status.rows_done, status.done) == (3, 2_500, True)
    assert await _count_profiles(sqlite_uow) == 2_500


async def test_the_same_generation_key_reuses_the_generation(sqlite_uow: UowFactory) -> None:
    request = schemas.GenerateProfiles(count=200, chunk_size=100, key="same")
    async with sqlite_uow() as uow:
        first = await services.start_generation(uow, request)
    async with sqlite_uow() as uow:
        again = await services.start_generation(uow, request)
    assert again == first


async def test_generated_profiles_have_unique_handles(sqlite_uow: UowFactory) -> None:
    for key in ("a", "b"):  # same seed twice: the generation number keeps handles apart
        request = schemas.GenerateProfiles(count=300, chunk_size=300, seed=1, key=key)
        async with sqlite_uow() as uow:
            plan = await services.start_generation(uow, request)
        async with sqlite_uow() as uow:
            await services.generate_chunk(
                uow, schemas.GenerateChunk(generation_id=plan.generation_id, chunk_index=0)
            )
    async with sqlite_uow() as uow:
        distinct = await uow.session.scalar(select(func.count(func.distinct(Profile.email))))
    assert distinct == 600
