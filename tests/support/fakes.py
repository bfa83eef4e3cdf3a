"""An in-memory unit of work over the fake repositories: no I/O, the same contract.

Only a commit publishes a unit of work's changes to the store, so an uncommitted unit of
work leaves it untouched, as a rolled-back transaction would.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from pydantic import BaseModel

from domain.repositories import JobStamp
from domain.uow import DuplicateJob
from tests.support.fake_repositories import (
    FakeExperimentRepository,
    FakeGenerationRepository,
    FakeJobRecordRepository,
    FakeMetricRepository,
    FakeProfileRepository,
    FakeRunRepository,
    FakeSession,
    FakeStore,
)

__all__ = ["FakeStore", "FakeUnitOfWork"]


class FakeUnitOfWork:
    """Counts its commits; only a commit makes its changes visible to the next one."""

    def __init__(self, store: FakeStore, job: JobStamp | None = None) -> None:
        self.store = store
        self.job = job
        self.commits = 0
        self._session: FakeSession | None = None

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("a unit of work is used once")
        self._session = session = FakeSession(self.store)
        self.profiles = FakeProfileRepository(session)
        self.experiments = FakeExperimentRepository(session)
        self.runs = FakeRunRepository(session)
        self.metrics = FakeMetricRepository(session)
        self.generations = FakeGenerationRepository(session)
        self.jobs = FakeJobRecordRepository(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()

    async def commit(self, result: BaseModel | None = None) -> None:
        assert self._session is not None, "commit outside 'async with'"
        if self.job is not None and not await self.jobs.record_success(self.job):
            await self.rollback()
            raise DuplicateJob(self.job.job_id)
        self._session.publish()
        self.commits += 1
        self.store.commits += 1

    async def commit_in_one(self, effect: object, result: BaseModel) -> bool:
        return False  # the fakes write the usual way

    async def rollback(self) -> None:
        assert self._session is not None, "rollback outside 'async with'"
        self._session.discard()
