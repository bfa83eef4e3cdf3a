"""Following a generation (``worker.ops.following``) against the real job history: chunks
that failed for good stop the wait, the first one named, instead of a wait for ever."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from domain import schemas, services
from domain.db import utcnow
from domain.history_queries import Statement
from domain.models import JobRecord
from domain.views import GenerationStatus
from tests.support.db import MakeUow
from worker.ops import following
from worker.ops.following import ChunksFailed, watch_generation


class HistoryOnly:
    """The sources of a face with no Redis: the generation is read from the database."""

    def __init__(self, uow_factory: MakeUow) -> None:
        self.unit_of_work = uow_factory

    async def queue(self):
        raise AssertionError("following a generation reads no Redis")

    async def job(self, job_id: str):
        raise AssertionError("following a generation reads no Redis")

    async def read_rows(self, statement: Statement) -> Sequence[Mapping[str, Any]]:
        async with self.unit_of_work() as uow:
            return await uow.jobs.rows(statement)


async def _plan(uow_factory: MakeUow) -> int:
    payload = schemas.GenerateProfiles(count=250, chunk_size=100, seed=7, key="gen")
    async with uow_factory() as uow:
        plan = await services.start_generation(uow, payload)
    chunk = schemas.GenerateChunk(generation_id=plan.generation_id, chunk_index=0)
    async with uow_factory() as uow:
        await services.generate_chunk(uow, chunk)
    return plan.generation_id


async def _rows_done(watching: AsyncIterator[GenerationStatus], seen: list[int]) -> None:
    async for status in watching:
        seen.append(status.rows_done)


async def test_a_generation_stalled_on_a_failed_chunk_names_it(
    uow_factory, session_factory, monkeypatch
):
    monkeypatch.setattr(following, "STALL_SECONDS", -1.0)
    monkeypatch.setattr(following, "GENERATION_POLL_SECONDS", 0.0)
    generation_id = await _plan(uow_factory)
    now = utcnow()
    async with session_factory() as session:
        session.add(
            JobRecord(
                job_id=f"generation:{generation_id}:chunk:1:gen",
                function="generate_profiles_chunk",
                status="failed",
                parent_id="gen",
                tries=3,
                payload={"generation_id": generation_id, "chunk_index": 1},
                error_type="OperationalError",
                error_message="the database went away",
                enqueued_at=now - timedelta(seconds=1),
                started_at=now - timedelta(seconds=1),
                finished_at=now,
                duration_ms=1000,
            )
        )
        await session.commit()
    seen: list[int] = []
    with pytest.raises(ChunksFailed) as stalled:
        await _rows_done(watch_generation(HistoryOnly(uow_factory), generation_id, "gen"), seen)
    assert str(stalled.value) == (
        f"generation {generation_id} cannot finish: 1 chunk job(s) failed; first, "
        f"generation:{generation_id}:chunk:1:gen: OperationalError: the database went away"
    )
    assert seen[0] == 100


async def test_the_watch_ends_at_its_deadline_or_when_every_chunk_committed(uow_factory):
    generation_id = await _plan(uow_factory)
    sources = HistoryOnly(uow_factory)
    late = [status async for status in watch_generation(sources, generation_id, "gen", 0)]
    assert [(s.rows_done, s.done) for s in late] == [(100, False)]
    for index in (1, 2):
        chunk = schemas.GenerateChunk(generation_id=generation_id, chunk_index=index)
        async with uow_factory() as uow:
            await services.generate_chunk(uow, chunk)
    done = [status async for status in watch_generation(sources, generation_id, "gen")]
    assert [(s.rows_done, s.done) for s in done] == [(250, True)]
