"""Deterministic, fast fake profiles.

Faker's per-row API runs at a few thousand profiles per second; here its word lists are
loaded once and sampled in bulk with a seeded ``random.Random``, which is two orders of
magnitude faster and yields the very same rows for the same (seed, chunk).

The lists are Faker's own, copied into ``profile_words.json`` (its licence beside it):
the package itself (a 2 MB download, 1,479 files, 0.27 s of CPU to import on a first run)
was a dependency for 61 KB of words.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

WORDS = Path(__file__).with_name("profile_words.json")


class FakeProfile(NamedTuple):
    """A tuple in the ``profiles`` columns' order: COPY takes a chunk of them as they are."""

    username: str
    email: str
    full_name: str
    bio: str


@dataclass(frozen=True)
class _Vocabulary:
    first_names: tuple[str, ...]
    first_weights: tuple[float, ...]
    last_names: tuple[str, ...]
    last_weights: tuple[float, ...]
    jobs: tuple[str, ...]
    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]
    domains: tuple[str, ...]


@cache
def _vocabulary() -> _Vocabulary:
    words = json.loads(WORDS.read_text(encoding="utf-8"))
    first: dict[str, float] = dict(words["first_names"])
    last: dict[str, float] = dict(words["last_names"])
    return _Vocabulary(
        first_names=tuple(first),
        first_weights=tuple(itertools.accumulate(first.values())),
        last_names=tuple(last),
        last_weights=tuple(itertools.accumulate(last.values())),
        jobs=tuple(words["jobs"]),
        adjectives=tuple(words["adjectives"]),
        nouns=tuple(words["nouns"]),
        domains=tuple(words["domains"]),
    )


_NOT_LETTER = re.compile(r"[^a-z]")


@cache  # names come from Faker's fixed lists: a few thousand distinct values
def _slug(name: str) -> str:
    return _NOT_LETTER.sub("", name.lower())


def generate_chunk(
    *, seed: int, generation_number: int, chunk_index: int, start: int, count: int
) -> list[FakeProfile]:
    """Profiles ``start .. start+count-1`` of a generation; the same arguments, the same rows.

    The ``.g<generation>n<index>`` suffix makes usernames and emails unique across every
    generation, so no two chunks can ever collide.
    """
    vocab = _vocabulary()
    rng = random.Random(f"profiles:{seed}:{chunk_index}")
    firsts = rng.choices(vocab.first_names, cum_weights=vocab.first_weights, k=count)
    lasts = rng.choices(vocab.last_names, cum_weights=vocab.last_weights, k=count)
    jobs = rng.choices(vocab.jobs, k=count)
    adjectives = rng.choices(vocab.adjectives, k=count)
    nouns = rng.choices(vocab.nouns, k=count)
    domains = rng.choices(vocab.domains, k=count)
    profiles = []
    for i in range(count):
        first, last = firsts[i], lasts[i]
        handle = f"{_slug(first)}.{_slug(last)}.g{generation_number}n{start + i}"
        profiles.append(
            FakeProfile(
                handle,
                f"{handle}@{domains[i]}",
                f"{first} {last}",
                f"{jobs[i]}. Working on {adjectives[i].lower()} {nouns[i]}.",
            )
        )
    return profiles
