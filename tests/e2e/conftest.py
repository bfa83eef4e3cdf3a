from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.processes import WorkerProcess, running_worker, service_env
from worker.scratch import RedisSpace


@pytest.fixture
def env(pg_database: str, clean_redis: RedisSpace, session_factory: object) -> dict[str, str]:
    """Environment for real processes, on emptied tables and an emptied Redis database."""
    return service_env(pg_database, clean_redis.url)


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    with running_worker(env, tmp_path / "worker.log") as process:
        yield process
