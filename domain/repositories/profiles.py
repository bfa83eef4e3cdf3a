from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import AlreadyExists
from domain.generator import PROFILE_COLUMNS, ProfileRow
from domain.models import Profile
from domain.repositories._sql import dialect_of, violated_constraint


def unique_field_error(error: IntegrityError) -> AlreadyExists | None:
    where = violated_constraint(error)
    for field in ("username", "email"):
        if field in where:
            return AlreadyExists(f"{field} is already taken by another profile")
    return None


class ProfileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, profile: Profile) -> Profile:
        self.session.add(profile)
        await self.flush()
        return profile

    async def flush(self) -> None:
        """Flush pending changes, turning a taken username or email into ``AlreadyExists``."""
        try:
            await self.session.flush()
        except IntegrityError as error:
            domain_error = unique_field_error(error)
            if domain_error is None:
                raise
            raise domain_error from error

    async def get(self, profile_id: int) -> Profile | None:
        return await self.session.get(Profile, profile_id)

    async def get_for_update(self, profile_id: int) -> Profile | None:
        statement = select(Profile).where(Profile.id == profile_id).with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def exists(self, profile_id: int) -> bool:
        found = await self.session.scalar(select(Profile.id).where(Profile.id == profile_id))
        return found is not None

    async def list_newest(
        self, *, username_prefix: str | None, email_prefix: str | None, limit: int
    ) -> list[Profile]:
        """Newest first (by id). A prefix is matched case-sensitively with its ``%`` and
        ``_`` taken literally: ``LIKE :prefix || '%'``, which a text_pattern_ops index serves."""
        statement = select(Profile).order_by(Profile.id.desc()).limit(limit)
        if username_prefix is not None:
            statement = statement.where(
                Profile.username.startswith(username_prefix, autoescape=True)
            )
        if email_prefix is not None:
            statement = statement.where(Profile.email.startswith(email_prefix, autoescape=True))
        return list((await self.session.scalars(statement)).all())

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(Profile)) or 0)

    async def insert_many(self, profiles: Sequence[ProfileRow]) -> int:
        """Bulk insert: COPY on PostgreSQL, one executemany elsewhere."""
        if dialect_of(self.session) == "postgresql":
            await self._copy(profiles)
        else:
            rows = [dict(zip(PROFILE_COLUMNS, row, strict=True)) for row in profiles]
            await self.session.execute(insert(Profile), rows)
        return len(profiles)

    async def _copy(self, profiles: Sequence[ProfileRow]) -> None:
        connection = await self.session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        if raw is not None and not raw.is_in_transaction():
            # SQLAlchemy's asyncpg adapter sends BEGIN with the first statement, not before.
            await connection.exec_driver_sql("SELECT 1")
        # COPY bypasses SQLAlchemy; it must join the unit of work's open transaction.
        if raw is None or not raw.is_in_transaction():
            raise RuntimeError("bulk COPY needs an open transaction on the session")
        # A row is already a tuple in PROFILE_COLUMNS order: no copy of the chunk.
        await raw.copy_records_to_table("profiles", records=profiles, columns=PROFILE_COLUMNS)
