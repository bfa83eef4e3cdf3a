"""A profile generation's bookkeeping: its row, and one idempotency key per chunk."""

from __future__ import annotations

from functools import partial

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import GenerationChunk, ProfileGeneration
from domain.progress_queries import generation_status
from domain.repositories._sql import insert_for
from domain.repositories.history_reads import statement_rows
from domain.views import GenerationStatus


class GenerationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_or_create(
        self, *, key: str, seed: int, total: int, chunk_size: int
    ) -> ProfileGeneration:
        statement = (
            insert_for(self.session, ProfileGeneration)
            .values(key=key, seed=seed, total=total, chunk_size=chunk_size)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        await self.session.execute(statement)
        found = await self.session.scalar(
            select(ProfileGeneration).where(ProfileGeneration.key == key)
        )
        assert found is not None  # inserted or already there, in this very transaction
        return found

    async def get(self, generation_id: int) -> ProfileGeneration | None:
        return await self.session.get(ProfileGeneration, generation_id)

    async def claim_chunk(self, generation_id: int, chunk_index: int, rows: int) -> bool:
        """Take the chunk's idempotency key; False when an earlier run already committed it.

        A concurrent run of the same chunk blocks on the key until the first commits (then
        sees it taken) or rolls back (then takes it).
        """
        statement = (
            insert_for(self.session, GenerationChunk)
            .values(generation_id=generation_id, chunk_index=chunk_index, rows_inserted=rows)
            .on_conflict_do_nothing(index_elements=["generation_id", "chunk_index"])
            .returning(GenerationChunk.chunk_index)
        )
        return (await self.session.execute(statement)).first() is not None

    async def status(self, generation_id: int) -> GenerationStatus | None:
        """Its chunks committed and profiles written (``domain.progress_queries``)."""
        return await generation_status(partial(statement_rows, self.session), generation_id)
