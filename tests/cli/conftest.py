"""The CLI in-process (Typer's CliRunner) against the suite's PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from typer.testing import CliRunner, Result

from worker.cli import app
from worker.lanes import Lane, lane_queue, lane_queues
from worker.ops.enqueue import PARENT_KWARG
from worker.serialization import deserialize
from worker.settings import Settings
from worker.testing.scratch import RedisSpace

QUEUE = Settings.model_fields["queue_name"].default


@dataclass
class Cli:
    """``jobs ...`` in-process. Awaiting it runs the command in a thread, where its own
    ``asyncio.run`` cannot meet the test's event loop."""

    env: dict[str, str | None]

    def invoke(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        return CliRunner().invoke(app, list(args), env={**self.env, **env}, input=stdin)

    async def __call__(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        return await asyncio.to_thread(self.invoke, *args, stdin=stdin, **env)


def one_json(result: Result) -> dict[str, Any]:
    """The single JSON object a ``--json`` command must print on stdout."""
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line of JSON on stdout, got {result.stdout!r}"
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


def cli_env(database_url: str, redis_url: str) -> dict[str, str | None]:
    """Only the suite's services: no JOBS_* setting leaks in from the caller's shell."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("JOBS_")}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, COLUMNS="200")
    return env


@pytest.fixture
def cli(pg_database: str, clean_redis: RedisSpace, session_factory: object) -> Cli:
    """The CLI on emptied tables and an emptied Redis database."""
    return Cli(cli_env(pg_database, clean_redis.url))


@dataclass
class Queue:
    """What producers left in Redis: queued job ids and their decoded payloads."""

    client: redis.Redis

    def job_ids(self, lane: Lane | None = None) -> list[str]:
        """The jobs queued in ``lane``, or in every lane."""
        queues = [lane_queue(QUEUE, lane)] if lane else lane_queues(QUEUE)
        return sorted(raw.decode() for queue in queues for raw in self.client.zrange(queue, 0, -1))

    def payload(self, job_id: str) -> Any:
        raw = self.client.get(f"arq:job:{job_id}")
        assert raw is not None, f"job {job_id} is not in Redis"
        job = deserialize(raw)
        assert set(job["k"]) <= {PARENT_KWARG}  # a child names its submission, nothing else
        assert len(job["a"]) == 1
        return job["a"][0]

    def parent(self, job_id: str) -> str | None:
        raw = self.client.get(f"arq:job:{job_id}")
        assert raw is not None, f"job {job_id} is not in Redis"
        parent: str | None = deserialize(raw)["k"].get(PARENT_KWARG)
        return parent

    def job_keys(self) -> list[bytes]:
        return list(self.client.scan_iter("arq:*"))


@pytest.fixture
def queue(clean_redis: RedisSpace) -> Iterator[Queue]:
    client = redis.Redis.from_url(clean_redis.url)
    try:
        yield Queue(client)
    finally:
        client.close()


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
