"""The job history's flow: how many jobs finished in each time bucket, by function and state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models.bookkeeping import JobRecord
from domain.repositories._sql import dialect_of


async def finished_per_bucket(
    session: AsyncSession, since: datetime, bucket_seconds: int
) -> list[tuple[int, str, str, int]]:
    """(bucket start in seconds since the epoch, function, state, jobs) for every job that
    finished since ``since``: a range of the finished_at index, as the overview's counts.
    An hour of a busy history is a few hundred thousand rows; (finished_at, function,
    status) would answer from the index alone, at the cost of one more index per write."""
    if dialect_of(session) == "postgresql":
        epoch = func.extract("epoch", JobRecord.finished_at)
        start = func.floor(epoch / bucket_seconds) * bucket_seconds
    else:  # SQLite (the demo): integers divide as integers
        start = cast(func.strftime("%s", JobRecord.finished_at), Integer) / bucket_seconds
        start = start * bucket_seconds
    bucket = start.label("bucket")
    statement = (
        select(bucket, JobRecord.function, JobRecord.status, func.count())
        .where(JobRecord.finished_at >= since)
        .group_by(bucket, JobRecord.function, JobRecord.status)
        .order_by(bucket)
    )
    rows = (await session.execute(statement)).all()
    return [(int(start), function, status, int(n)) for start, function, status, n in rows]
