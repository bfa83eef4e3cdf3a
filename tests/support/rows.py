"""Rows written straight to the database and read back, for the job and end-to-end tests.

Seeds states jobs cannot fake (a run idle for hours, job history from last month); probes
what jobs wrote; waits, bounded, for something to appear.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.db import utcnow
from domain.models import Experiment, JobRecord, Metric, Profile, Run
from domain.repositories import JobRecordRepository

T = TypeVar("T")

Sessions = async_sessionmaker[AsyncSession]


async def seed_runs(sessions: Sessions, idle: Sequence[timedelta]) -> list[int]:
    """One profile and experiment with a running run per ``idle`` (time since its last metric)."""
    now = utcnow()
    tag = uuid.uuid4().hex[:8]
    async with sessions() as session:
        owner = Profile(username=f"owner_{tag}", email=f"{tag}@example.com", full_name="Owner")
        session.add(owner)
        await session.flush()
        experiment = Experiment(owner_id=owner.id, name=f"exp-{tag}", status="running")
        session.add(experiment)
        await session.flush()
        runs = [
            Run(
                experiment_id=experiment.id,
                status="running",
                started_at=now - gap,
                last_activity_at=now - gap,
            )
            for gap in idle
        ]
        session.add_all(runs)
        await session.commit()
        return [run.id for run in runs]


async def store_points(
    sessions: Sessions, run_id: int, points: dict[int, float], name: str = "loss"
) -> None:
    """Points (step -> value) straight into the table: what is read back is exactly what
    was put, with none of the write path's checks in between."""
    rows = [
        {"run_id": run_id, "name": name, "step": s, "value": v, "recorded_at": utcnow()}
        for s, v in points.items()
    ]
    async with sessions() as session:
        await session.execute(insert(Metric), rows)
        await session.commit()


async def seed_job_record(
    sessions: Sessions,
    job_id: str,
    *,
    status: str,
    finished_at: datetime,
    function: str = "create_profile",
) -> None:
    async with sessions() as session:
        session.add(
            JobRecord(
                job_id=job_id,
                function=function,
                status=status,
                tries=1,
                enqueued_at=finished_at - timedelta(seconds=1),
                started_at=finished_at - timedelta(seconds=1),
                finished_at=finished_at,
                duration_ms=1000,
            )
        )
        await session.commit()


async def run_statuses(sessions: Sessions, run_ids: Sequence[int]) -> list[str]:
    async with sessions() as session:
        found = {
            run.id: run.status
            for run in await session.scalars(select(Run).where(Run.id.in_(run_ids)))
        }
    return [found[run_id] for run_id in run_ids]


async def job_record(sessions: Sessions, job_id: str) -> JobRecord | None:
    async with sessions() as session:
        return await JobRecordRepository(session).get(job_id)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 20, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = await probe()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not seen within {within}s")
        await asyncio.sleep(0.05)
