"""A real arq ``Worker`` in burst mode on fakeredis, against the suite's PostgreSQL database.

Each ``harness.run()`` builds a fresh worker from ``build_worker_settings`` (the same
composition root the real process uses), lets it drain the queue and closes it. Producer
and workers share one ``FakeServer``, so jobs, results and arq's bookkeeping keys persist
between runs the way they would in Redis.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from arq import Worker
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.cron import CronJob
from arq.jobs import Job, JobResult
from fakeredis import FakeServer
from fakeredis.aioredis import FakeRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.models import JobRecord
from tests.jobs.support import count_rows
from worker.config import Settings
from worker.main import build_worker_settings, cron_jobs
from worker.serialization import deserialize, serialize

BURST_TIMEOUT = 30
# Cron jobs stay registered (so producers can call them by name) but never fire on their own.
NEVER = datetime(9999, 1, 1, tzinfo=UTC)


def fake_arq_client(server: FakeServer, queue_name: str) -> ArqRedis:
    """An arq client (JSON both ways) on a fakeredis server."""
    return ArqRedis(
        FakeRedis(server=server).connection_pool,
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=queue_name,
    )


def parked_cron_jobs() -> list[CronJob]:
    jobs = cron_jobs()
    for job in jobs:
        job.next_run = NEVER
    return jobs


async def close_quietly(worker: Worker) -> None:
    # arq 0.28 closes its pool with redis-py's deprecated ``close()``; nothing else is hidden.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Call to deprecated close\.", category=DeprecationWarning
        )
        await worker.close()


@dataclass
class BurstHarness:
    settings: Settings
    server: FakeServer
    producer: ArqRedis
    session_factory: async_sessionmaker[AsyncSession]

    def worker(self, **overrides: Any) -> Worker:
        options = build_worker_settings(
            self.settings,
            redis_pool=fake_arq_client(self.server, self.settings.queue_name),
            burst=True,
            handle_signals=False,
            poll_delay=0,
            cron_jobs=parked_cron_jobs(),
            **overrides,
        )
        del options["redis_settings"]  # the pool given replaces it
        return Worker(**options)

    async def run(self, **overrides: Any) -> Worker:
        """Run one burst until the queue is empty (deferred retries included)."""
        worker = self.worker(**overrides)
        try:
            async with asyncio.timeout(BURST_TIMEOUT):
                await worker.async_run()
        finally:
            await close_quietly(worker)
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


async def _no_redis_info(*_args: Any, **_kwargs: Any) -> None:
    """fakeredis has no INFO command; arq logs it at startup."""


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
    monkeypatch: pytest.MonkeyPatch,
    job_settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[BurstHarness]:
    monkeypatch.setattr("arq.worker.log_redis_info", _no_redis_info)
    server = FakeServer()
    producer = fake_arq_client(server, job_settings.queue_name)
    yield BurstHarness(job_settings, server, producer, session_factory)
    await producer.aclose(close_connection_pool=True)
