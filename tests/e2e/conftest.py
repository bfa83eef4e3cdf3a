"""Real worker and CLI processes on the suite's services, or on private servers a test breaks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.fleet import SUMMARIES, Fleet, fleet, start_a_run
from tests.support.queue import arq_client
from tests.support.servers import PostgresServer, RedisServer, postgres_server, redis_server
from worker.testing.processes import WorkerProcess, running_worker, service_env
from worker.testing.scratch import RedisSpace, migrate

LOG_TAIL = 20_000  # characters of each worker's log shown when a test fails


@pytest.fixture
def env(pg_database: str, clean_redis: RedisSpace, session_factory: object) -> dict[str, str]:
    """Environment for real processes, on emptied tables and an emptied Redis database.

    An idle worker waits on its doorbell at most a quarter second here, not 2 s: what these
    tests plant in Redis by hand, and other workers' retries, ring no bell, and the
    doorbell itself is tested in tests/integration/test_doorbell.py."""
    return {**service_env(pg_database, clean_redis.url), "JOBS_IDLE_WAIT_SECONDS": "0.25"}


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    with running_worker(env, tmp_path / "worker.log") as process:
        yield process


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Fleet]:
    with fleet(env, tmp_path) as started:
        yield started


@pytest.fixture
async def pool(env: dict[str, str]) -> AsyncIterator[ArqRedis]:
    async with arq_client(env["REDIS_URL"]) as client:
        yield client


@pytest.fixture
def private_redis(redis_server_binary: str) -> Iterator[RedisServer]:
    """A redis-server of the test's own (AOF, fsync always) that it may crash and restart."""
    with redis_server() as server:
        yield server


@pytest.fixture
async def run_id(session_factory: async_sessionmaker[AsyncSession]) -> int:
    return await start_a_run(session_factory)


@pytest.fixture
def private_postgres(postgres_binaries: Path) -> Iterator[tuple[PostgresServer, str]]:
    """A PostgreSQL server of the test's own, migrated, that it may stop and restart."""
    with postgres_server() as server:
        server.create_database("dbjobs")
        url = server.database_url("dbjobs")
        migrate(url)
        yield server, url


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test that ran workers shows their logs: what they did is the evidence."""
    report = yield
    started = getattr(item, "funcargs", {}).get("workers")
    if report.failed and isinstance(started, Fleet):
        for worker in started.workers:
            report.sections.append((f"log of {worker.log_path.name}", worker.log[-LOG_TAIL:]))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARIES:
        terminalreporter.section("reliability scenarios")
        for summary in SUMMARIES:
            terminalreporter.write_line(summary.line())
