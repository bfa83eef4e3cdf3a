"""The fake-profile generator: deterministic, collision-free, realistic."""

from __future__ import annotations

import gc
import re
from typing import NamedTuple

from domain.generator import PROFILE_COLUMNS, generate_chunk, generate_chunk_yielding
from domain.schemas import GENERATED_USERNAME

CHUNK = 200
EMAIL_SHAPE = re.compile(r"^[a-z]+\.[a-z]+\.g\d+n\d+@[a-z0-9-]+(\.[a-z0-9-]+)+$")


class Named(NamedTuple):
    """A row read by its columns' names."""

    username: str
    email: str
    full_name: str
    bio: str


def _chunk(generation: int, index: int, seed: int = 0, count: int = CHUNK) -> list[Named]:
    rows = generate_chunk(
        seed=seed,
        generation_number=generation,
        chunk_index=index,
        start=index * CHUNK,
        count=count,
    )
    return [Named._make(row) for row in rows]


def test_rows_are_in_the_columns_order():
    assert Named._fields == PROFILE_COLUMNS


async def test_the_yielding_generator_gives_the_very_same_rows():
    # Over several slices of its work, and a last one cut short.
    arguments = {"seed": 9, "generation_number": 4, "chunk_index": 2, "start": 0, "count": 5_321}
    assert await generate_chunk_yielding(**arguments) == generate_chunk(**arguments)


def test_rows_are_plain_tuples_the_cyclic_gc_stops_tracking():
    rows = generate_chunk(seed=1, generation_number=1, chunk_index=0, start=0, count=10)
    gc.collect()
    assert not any(gc.is_tracked(row) for row in rows)


def test_same_arguments_give_the_same_rows():
    assert _chunk(1, 3, seed=42) == _chunk(1, 3, seed=42)


def test_other_seeds_or_chunks_give_other_people():
    names = {tuple(p.full_name for p in _chunk(1, 0, seed=seed)) for seed in (1, 2)}
    names.add(tuple(p.full_name for p in _chunk(1, 1, seed=1)))
    assert len(names) == 3


def test_count_and_positions_are_honoured():
    short = _chunk(1, 3, count=7)
    assert [p.username.rsplit("n", 1)[1] for p in short] == [str(3 * CHUNK + i) for i in range(7)]


def test_no_username_or_email_repeats_across_generations_and_chunks():
    # Same seed everywhere: only the generation number and position keep rows apart.
    profiles = [
        p for generation in (1, 2, 12) for index in range(4) for p in _chunk(generation, index)
    ]
    assert len(profiles) == 3 * 4 * CHUNK
    assert len({p.username for p in profiles}) == len(profiles)
    assert len({p.email for p in profiles}) == len(profiles)


def test_fields_look_real():
    for profile in _chunk(5, 2):
        first, last = profile.full_name.split(" ")
        assert first.isalpha()
        assert first[0].isupper()
        assert last.isalpha()
        assert last[0].isupper()
        assert profile.username.startswith(f"{first.lower()}.{last.lower()}.")
        assert EMAIL_SHAPE.match(profile.email), profile.email
        assert profile.email.startswith(f"{profile.username}@")
        assert 3 <= len(profile.username) <= 64
        assert profile.bio.endswith(".")
        assert " Working on " in profile.bio


def test_generated_usernames_carry_the_reserved_suffix():
    profile = _chunk(7, 1)[0]
    assert GENERATED_USERNAME.search(profile.username)
    assert profile.username.endswith(f".g7n{CHUNK}")
