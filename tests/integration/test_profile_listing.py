"""Listing profiles on PostgreSQL: newest first, by prefix, with LIKE's wildcards literal."""

from __future__ import annotations

from domain import schemas, services
from domain.db import utcnow
from domain.models import Profile
from tests.support.db import MakeUow, add_profile

# Usernames may hold "_" (a LIKE wildcard); emails are stored as given, "%" and "\" too.
ROWS = [
    ("a_b", "50%off@example.com"),
    ("axb", "50xoff@example.com"),
    ("a_c", "back\\slash@example.com"),
    ("b_a", "backxslash@example.com"),
]


async def add_rows(uow_factory: MakeUow) -> dict[str, int]:
    now = utcnow()
    ids = {}
    async with uow_factory() as uow:
        for username, email in ROWS:
            profile = Profile(
                username=username, email=email, full_name="F", created_at=now, updated_at=now
            )
            ids[username] = (await uow.profiles.add(profile)).id
        await uow.commit()
    return ids


async def usernames(uow_factory: MakeUow, limit: int = 100, **prefixes: str) -> list[str]:
    async with uow_factory() as uow:
        found = await uow.profiles.list_newest(
            username_prefix=prefixes.get("username"),
            email_prefix=prefixes.get("email"),
            limit=limit,
        )
        return [profile.username for profile in found]


async def test_profiles_are_listed_newest_first_up_to_the_limit(uow_factory: MakeUow):
    ids = await add_rows(uow_factory)
    assert list(ids.values()) == sorted(ids.values())
    assert await usernames(uow_factory) == ["b_a", "a_c", "axb", "a_b"]
    assert await usernames(uow_factory, limit=2) == ["b_a", "a_c"]


async def test_a_prefix_matches_its_wildcards_literally(uow_factory: MakeUow):
    await add_rows(uow_factory)
    assert await usernames(uow_factory, username="a_") == ["a_c", "a_b"]
    assert await usernames(uow_factory, username="a") == ["a_c", "axb", "a_b"]
    assert await usernames(uow_factory, email="50%") == ["a_b"]
    assert await usernames(uow_factory, email="back\\") == ["a_c"]
    assert await usernames(uow_factory, email="%") == []
    assert await usernames(uow_factory, username="A") == []  # case-sensitive


async def test_both_prefixes_must_match(uow_factory: MakeUow):
    await add_rows(uow_factory)
    assert await usernames(uow_factory, username="a", email="back") == ["a_c"]
    assert await usernames(uow_factory, username="b", email="50") == []


async def test_list_profiles_returns_views_and_commits_nothing(uow_factory: MakeUow):
    ada = await add_profile(uow_factory, "ada")
    await add_profile(uow_factory, "adam")
    await add_profile(uow_factory, "grace")
    query = schemas.ListProfiles(username="ada", limit=5)
    async with uow_factory() as uow:
        listed = await services.list_profiles(uow, query)
    assert [view.username for view in listed] == ["adam", "ada"]
    assert listed[-1] == ada
