"""``dbjobs profiles list``: newest first, by prefix, literal text, one JSON object, 80 columns."""

from __future__ import annotations

import pytest

from domain.db import utcnow
from domain.models import Profile
from tests.cli.conftest import one_json
from tests.support.text import ALERT, LINK, RED, assert_clean

# Stored by any other writer than our schemas (which refuse them): shown as they are.
MARKUP_NAMES = [ALERT, LINK, "[/]x"]


@pytest.fixture
async def profiles(uow_factory) -> list[str]:
    """Usernames stored oldest first: two plain, then markup-looking ones."""
    now = utcnow()
    rows = [
        ("ada", "ada@example.com", "Ada Lovelace"),
        ("adam", "adam@example.org", "Adam Smith"),
        *((name, f"m{n}@example.com", RED) for n, name in enumerate(MARKUP_NAMES)),
    ]
    async with uow_factory() as uow:
        for username, email, full_name in rows:
            await uow.profiles.add(
                Profile(
                    username=username,
                    email=email,
                    full_name=full_name,
                    created_at=now,
                    updated_at=now,
                )
            )
        await uow.commit()
    return [username for username, _, _ in rows]


def listed(result) -> list[str]:
    assert result.exit_code == 0, result.stderr
    return [profile["username"] for profile in one_json(result)["profiles"]]


async def test_profiles_are_listed_newest_first_as_one_json_object(cli, profiles):
    result = await cli("profiles", "list", "--json")
    assert list(one_json(result)) == ["profiles"]
    assert listed(result) == profiles[::-1]
    assert listed(await cli("profiles", "list", "--limit", "2", "--json")) == profiles[:-3:-1]


async def test_prefixes_filter_usernames_and_emails(cli, profiles):
    assert listed(await cli("profiles", "list", "--username", "ada", "--json")) == ["adam", "ada"]
    assert listed(await cli("profiles", "list", "--email", "adam@", "--json")) == ["adam"]
    both = await cli("profiles", "list", "--username", "ad", "--email", "ada@", "--json")
    assert listed(both) == ["ada"]
    assert listed(await cli("profiles", "list", "--username", "[", "--json")) == profiles[:1:-1]
    assert listed(await cli("profiles", "list", "--username", "%", "--json")) == []


async def test_markup_looking_text_is_printed_literally(cli, profiles):
    table = await cli("profiles", "list")
    assert table.exit_code == 0, table.stderr
    assert_clean(table)
    for name in MARKUP_NAMES:
        assert name in table.stdout
    assert "\\u001b[31mred\\u001b[0m" in table.stdout
    assert "5 profile(s)" in table.stdout


async def test_the_table_fits_80_columns(cli, profiles):
    table = await cli("profiles", "list", COLUMNS="80")
    assert table.exit_code == 0, table.stderr
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    assert "adam@example.org" in table.stdout


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--limit", "0"], "--limit: Input should be greater than or equal to 1"),
        (["--limit", "1001"], "--limit: Input should be less than or equal to 1000"),
        (["--username", ""], "--username: String should have at least 1 character"),
        (["--email", "a\x00b"], "--email: String should match pattern"),
    ],
)
async def test_bad_filters_are_refused(cli, args, problem):
    result = await cli("profiles", "list", *args)
    assert result.exit_code == 2
    assert problem in result.stderr
    assert result.stdout == ""
