"""Deterministic, fast fake profiles.

Faker's per-row API runs at a few thousand profiles per second; here its word lists are
loaded once and sampled in bulk with a seeded ``random.Random``, which is two orders of
magnitude faster and yields the very same rows for the same (seed, chunk).

A chunk of 10,000 rows is still 17 ms of CPU, and loading the word lists (importing
Faker) 180 ms once: in a worker's event loop, every other job (an interactive one among
them) would wait that long. ``generate_chunk_yielding`` builds the same rows a slice at a
time, letting the loop run between slices (``SLICE_ROWS``), and loads the lists in a
thread.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

# Rows built between two turns of the event loop: about a millisecond of CPU.
SLICE_ROWS = 500


# A row is a tuple in these columns' order: COPY takes a chunk of them as they are. A plain
# tuple, not a NamedTuple: the cyclic GC stops tracking a tuple of strings at its first
# pass, but never an instance of a tuple's subclass, and a generation's chunks in flight
# (40,000 rows) made each full pass 4-11 ms of the worker's event loop instead of 0.4 ms.
PROFILE_COLUMNS = ("username", "email", "full_name", "bio")
ProfileRow = tuple[str, str, str, str]


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
    from faker.providers.company.en_US import Provider as Company
    from faker.providers.internet.en_US import Provider as Internet
    from faker.providers.job.en_US import Provider as Job
    from faker.providers.person.en_US import Provider as Person

    first = dict(Person.first_names)
    last = dict(Person.last_names)
    return _Vocabulary(
        first_names=tuple(first),
        first_weights=tuple(itertools.accumulate(first.values())),
        last_names=tuple(last),
        last_weights=tuple(itertools.accumulate(last.values())),
        jobs=tuple(Job.jobs),
        adjectives=tuple(Company.catch_phrase_words[0]),
        nouns=tuple(Company.catch_phrase_words[2]),
        domains=tuple(Internet.free_email_domains),
    )


_NOT_LETTER = re.compile(r"[^a-z]")


@cache  # names come from Faker's fixed lists: a few thousand distinct values
def _slug(name: str) -> str:
    return _NOT_LETTER.sub("", name.lower())


def generate_chunk(
    *, seed: int, generation_number: int, chunk_index: int, start: int, count: int
) -> list[ProfileRow]:
    """Profiles ``start .. start+count-1`` of a generation; the same arguments, the same rows.

    The ``.g<generation>n<index>`` suffix makes usernames and emails unique across every
    generation, so no two chunks can ever collide.
    """
    rows: list[ProfileRow] = []
    for _ in _build(rows, seed, generation_number, chunk_index, start, count):
        pass
    return rows


async def generate_chunk_yielding(
    *, seed: int, generation_number: int, chunk_index: int, start: int, count: int
) -> list[ProfileRow]:
    """``generate_chunk``'s rows, letting the event loop run between slices of them."""
    if _vocabulary.cache_info().currsize == 0:
        await asyncio.to_thread(_vocabulary)  # Faker's import: once per process
    rows: list[ProfileRow] = []
    for _ in _build(rows, seed, generation_number, chunk_index, start, count):
        await asyncio.sleep(0)
    return rows


def _build(
    rows: list[ProfileRow],
    seed: int,
    generation_number: int,
    chunk_index: int,
    start: int,
    count: int,
) -> Iterator[None]:
    """Append the chunk's rows to ``rows``, pausing after each slice of the work.

    Each column is drawn whole before the next, in slices: ``choices`` takes one random
    number per item, so the slices draw what one call would."""
    vocab = _vocabulary()
    rng = random.Random(f"profiles:{seed}:{chunk_index}")
    columns: list[list[str]] = []
    for population, weights in (
        (vocab.first_names, vocab.first_weights),
        (vocab.last_names, vocab.last_weights),
        (vocab.jobs, None),
        (vocab.adjectives, None),
        (vocab.nouns, None),
        (vocab.domains, None),
    ):
        column: list[str] = []
        for size in _slice_sizes(count):
            column += rng.choices(population, cum_weights=weights, k=size)
            yield
        columns.append(column)
    firsts, lasts, jobs, adjectives, nouns, domains = columns
    for first_row in range(0, count, SLICE_ROWS):
        for i in range(first_row, min(count, first_row + SLICE_ROWS)):
            first, last = firsts[i], lasts[i]
            handle = f"{_slug(first)}.{_slug(last)}.g{generation_number}n{start + i}"
            rows.append(
                (
                    handle,
                    f"{handle}@{domains[i]}",
                    f"{first} {last}",
                    f"{jobs[i]}. Working on {adjectives[i].lower()} {nouns[i]}.",
                )
            )
        yield


def _slice_sizes(count: int) -> Iterator[int]:
    """``count`` as slices of ``SLICE_ROWS``; draws take a tenth of the rows' time."""
    step = SLICE_ROWS * 10
    for first in range(0, count, step):
        yield min(step, count - first)
