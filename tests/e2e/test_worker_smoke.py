from __future__ import annotations

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from sqlalchemy import func, select

from domain.models import Profile
from worker.serialization import deserialize, serialize
from worker.settings import Settings

pytestmark = pytest.mark.e2e


async def test_worker_process_creates_a_profile(env, worker, session_factory):
    pool = await create_pool(
        RedisSettings.from_dsn(env["REDIS_URL"]),
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=Settings().queue_name,
    )
    try:
        job = await pool.enqueue_job(
            "create_profile", {"username": "grace", "email": "g@example.com", "full_name": "G H"}
        )
        assert job is not None
        result = await job.result(timeout=20, poll_delay=0.05)
    finally:
        await pool.aclose()
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Profile)) == 1
    assert result["username"] == "grace"
