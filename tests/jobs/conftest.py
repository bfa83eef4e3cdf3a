"""A real arq ``Worker`` in burst mode on fakeredis, against the suite's PostgreSQL database.

Each ``harness.run()`` builds a fresh worker with ``worker.testing.inprocess`` (the same composition
root the real process uses), lets it drain the queue and closes it. Producer and workers
share one ``FakeServer``, so jobs, results and arq's bookkeeping keys persist between runs
the way they would in Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from arq import Worker
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import Job, JobResult
from fakeredis import FakeServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.models import JobRecord
from tests.support.db import count_rows
from worker.bootstrap import Services
from worker.serialization import deserialize
from worker.settings import Settings
from worker.testing.inprocess import drain, fake_pool, in_process_worker

BURST_TIMEOUT = 30


@dataclass
class BurstHarness:
    settings: Settings
    server: FakeServer
    producer: ArqRedis
    session_factory: async_sessionmaker[AsyncSession]

    def worker(self, **overrides: Any) -> Worker:
        pool = fake_pool(self.settings, self.server)
        return in_process_worker(
            self.settings, pool, **{"burst": True, "poll_delay": 0, **overrides}
        )

    def services(self) -> Services:
        """What a worker of these settings builds at startup, on the producer's Redis."""
        return Services.for_worker(self.settings, self.producer)

    async def run(self, **overrides: Any) -> Worker:
        """Run one burst until the queue is empty (deferred retries included)."""
        worker = self.worker(**overrides)
        await drain(worker, BURST_TIMEOUT)
        return worker

    async def enqueue(self, function: str, payload: Any = None, **options: Any) -> Job:
        args = () if payload is None else (payload,)
        job = await self.producer.enqueue_job(function, *args, **options)
        assert job is not None, f"{function} was not enqueued"
        return job

    async def result(self, job_id: str) -> JobResult:
        info = await Job(job_id, self.producer, _deserializer=deserialize).result_info()
        assert info is not None, f"no result for job {job_id}"
        return info

    async def raw_result(self, job_id: str) -> bytes:
        raw = await self.producer.get(result_key_prefix + job_id)
        assert raw is not None, f"no result for job {job_id}"
        return bytes(raw)

    async def forget(self, job_id: str) -> None:
        """Drop what arq remembers of a finished job, so the same id can be delivered again."""
        await self.producer.delete(
            result_key_prefix + job_id, in_progress_key_prefix + job_id, job_key_prefix + job_id
        )

    async def count(self, model: type[Any]) -> int:
        return await count_rows(self.session_factory, model)

    async def job_records(self) -> list[JobRecord]:
        async with self.session_factory() as session:
            return list((await session.scalars(select(JobRecord).order_by(JobRecord.job_id))).all())


@pytest.fixture
def job_settings(pg_database: str) -> Settings:
    return Settings(
        database_url=pg_database,
        max_jobs=10,
        max_tries=3,
        retry_base_delay=0.01,
        retry_max_delay=0.05,
        lease_seconds=5,
        generation_chunk_size=100,
        stale_run_seconds=600,
        job_history_days=14,
    )


@pytest.fixture
async def harness(
    job_settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[BurstHarness]:
    server = FakeServer()
    producer = fake_pool(job_settings, server)
    yield BurstHarness(job_settings, server, producer, session_factory)
    await producer.aclose(close_connection_pool=True)
