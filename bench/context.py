"""What every workload gets: the services, a Redis pool, the settings and the sizes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.processes import worker_env
from bench.services import BenchServices
from domain import schemas, services
from domain.db import create_engine, create_session_factory
from domain.uow import SqlAlchemyUnitOfWork
from worker.bootstrap import open_pool
from worker.settings import Settings


@dataclass(frozen=True)
class Sizes:
    noop_jobs: int
    metric_jobs: int
    metric_batches: int
    batch_points: int
    profiles: int
    enqueue_jobs: int
    enqueue_one_by_one: int
    raw_rows: int
    idle_seconds: float
    read_rows: int
    file_points: int

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            20_000, 10_000, 300, 1_000, 1_000_000, 50_000, 5_000, 200_000, 5.0, 1_000_000, 1_000_000
        )

    @classmethod
    def quick(cls) -> Sizes:
        return cls(3_000, 2_000, 60, 1_000, 1_000_000, 20_000, 2_000, 50_000, 3.0, 100_000, 100_000)


@dataclass
class Bench:
    services: BenchServices
    pool: ArqRedis
    engine: AsyncEngine
    settings: Settings
    sizes: Sizes
    runs: int
    # Medians measured earlier in this run, for later rows to quote as baselines.
    baselines: dict[str, float] = field(default_factory=dict)
    # Broken guarantees (a job run twice): shown in the table, then the bench exits 1.
    failures: list[str] = field(default_factory=list)
    lanes_scale: float = 1.0  # the lanes workload's size, as a fraction of the issue's

    @property
    def queue(self) -> str:
        return self.settings.queue_name

    def env(self, **settings: str) -> dict[str, str]:
        return worker_env(self.services, **settings)

    def unit_of_work(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(create_session_factory(self.engine))

    async def new_run(self) -> int:
        """A profile, an experiment and a running run to record metrics on; the run's id."""
        suffix = os.urandom(4).hex()
        async with self.unit_of_work() as uow:
            owner = await services.create_profile(
                uow,
                schemas.CreateProfile(
                    username=f"bench_{suffix}", email=f"bench_{suffix}@example.com", full_name="B"
                ),
            )
        async with self.unit_of_work() as uow:
            experiment = await services.create_experiment(
                uow, schemas.CreateExperiment(owner_id=owner.id, name=f"bench {suffix}")
            )
        async with self.unit_of_work() as uow:
            run = await services.start_run(uow, schemas.StartRun(experiment_id=experiment.id))
        return run.id


def bench_settings(services_: BenchServices) -> Settings:
    """What a worker started with ``Bench.env()`` reads: the environment, the bench's services."""
    return Settings(database_url=services_.database_url, redis_url=services_.redis_url)


@asynccontextmanager
async def open_bench(services_: BenchServices, sizes: Sizes, runs: int) -> AsyncIterator[Bench]:
    settings = bench_settings(services_)
    pool = await open_pool(settings)
    engine = create_engine(services_.database_url, pool_size=4)
    try:
        yield Bench(services_, pool, engine, settings, sizes, runs)
    finally:
        await engine.dispose()
        await pool.aclose()
