"""The unit of work: one session, one transaction, all of a use case's effect or none."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol, Self

import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.errors import DomainError
from domain.limits import OMITTED_KEY
from domain.repositories import (
    ExperimentRepository,
    GenerationRepository,
    JobRecordRepository,
    JobStamp,
    MetricReads,
    MetricRepository,
    ProfileRepository,
    RunRepository,
)
from domain.repositories.one_statement import OneStatement, write_with_success

MAX_RECORDED_RESULT = 16 * 1024


def recordable(result: BaseModel | None) -> dict[str, Any] | None:
    """A use case's result as the history keeps it: JSON, and small."""
    if result is None:
        return None
    data = result.model_dump(mode="json")
    size = len(orjson.dumps(data))
    if size > MAX_RECORDED_RESULT:
        return {OMITTED_KEY: f"a result of {size:,} bytes was not kept"}
    return data


class DuplicateJob(DomainError):
    """The job already succeeded in an earlier delivery; this run's effect was rolled back."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} already succeeded; this delivery changed nothing")


class UnitOfWork(Protocol):
    """What the services need; ``SqlAlchemyUnitOfWork`` and the test fakes both provide it."""

    profiles: ProfileRepository
    experiments: ExperimentRepository
    runs: RunRepository
    metrics: MetricRepository
    metric_reads: MetricReads
    generations: GenerationRepository
    jobs: JobRecordRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self, result: BaseModel | None = None) -> None: ...

    async def commit_in_one(self, effect: OneStatement | None, result: BaseModel) -> bool: ...

    async def rollback(self) -> None: ...


class SqlAlchemyUnitOfWork:
    """Opens a fresh ``AsyncSession`` on enter and rolls back on exit unless committed.

    Given a ``JobStamp``, ``commit`` first records the job's success in the same
    transaction, and raises ``DuplicateJob`` (rolling everything back) when an earlier
    delivery of the same job already committed.

    One instance serves one task: sessions are never shared between concurrent tasks.
    """

    profiles: ProfileRepository
    experiments: ExperimentRepository
    runs: RunRepository
    metrics: MetricRepository
    metric_reads: MetricReads
    generations: GenerationRepository
    jobs: JobRecordRepository

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], job: JobStamp | None = None
    ) -> None:
        self._session_factory = session_factory
        self._job = job
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use 'async with uow:'")
        return self._session

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("a unit of work is used once")
        session = self._session_factory()
        self._session = session
        self.profiles = ProfileRepository(session)
        self.experiments = ExperimentRepository(session)
        self.runs = RunRepository(session)
        self.metrics = MetricRepository(session)
        self.metric_reads = MetricReads(session)
        self.generations = GenerationRepository(session)
        self.jobs = JobRecordRepository(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.rollback()
        finally:
            await self.session.close()

    async def commit(self, result: BaseModel | None = None) -> None:
        """Commit; given a ``JobStamp``, record the job's success and ``result`` with it."""
        if self._job is not None and not await self.jobs.record_success(
            self._job, result=recordable(result), payload=self._job.payload
        ):
            await self.rollback()
            raise DuplicateJob(self._job.job_id)
        await self.session.commit()

    async def commit_in_one(self, effect: OneStatement | None, result: BaseModel) -> bool:
        """Write ``effect`` with the job's success and ``result`` as one statement that
        commits on its own (``one_statement``): True once written, the unit of work done.
        False when it wrote nothing, or cannot be written so (none on this database, not a
        job's first record, a transaction begun): the use case goes on the usual way."""
        job = self._job
        if effect is None or job is None or not job.first_record or self.session.in_transaction():
            return False
        return await write_with_success(self.session, effect, job, recordable(result))

    async def rollback(self) -> None:
        await self.session.rollback()
