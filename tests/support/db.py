"""Arrange steps through the use cases, and probes, on a real database (PostgreSQL or SQLite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from domain import schemas, services
from domain.db import Base
from domain.uow import SqlAlchemyUnitOfWork
from domain.views import ExperimentView, ProfileView, RunView

MakeUow = Callable[..., SqlAlchemyUnitOfWork]

# The databases a test in tests/integration runs on: its ``engine`` fixture, and so its
# ``session_factory`` and ``uow_factory``, take each in turn. A behaviour only one of
# them has is marked with ``postgresql_only`` or ``sqlite_only``.
POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql")
SQLITE = pytest.param("sqlite", id="sqlite")
DATABASES = (POSTGRESQL, SQLITE)
postgresql_only = pytest.mark.parametrize("engine", [POSTGRESQL], indirect=True)
sqlite_only = pytest.mark.parametrize("engine", [SQLITE], indirect=True)


@dataclass
class StatementLog:
    sql: list[str] = field(default_factory=list)

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        """The statements sent inside the block (the list fills when the block ends)."""
        seen: list[str] = []
        start = len(self.sql)
        yield seen
        seen.extend(self.sql[start:])


# Each table of the models as its leaves: the partitions of a partitioned one, or itself.
_LEAVES = text(
    "SELECT coalesce(tree.relid, t)::regclass::text FROM unnest(CAST(:tables AS regclass[])) "
    "AS t LEFT JOIN LATERAL pg_partition_tree(t) AS tree ON true WHERE tree.isleaf IS NOT false"
)
# What TRUNCATE ... RESTART IDENTITY would restart: every sequence drawn from since.
_RESTART_SEQUENCES = text(
    "SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false) "
    "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL"
)


async def empty_tables(connection: AsyncConnection, tables: Sequence[str]) -> None:
    """``TRUNCATE tables RESTART IDENTITY CASCADE``, paid only for what holds rows.

    A TRUNCATE makes new files for every table, partition and index it names (about 70
    here), at 0.1 to 0.5 s on a loaded machine; most tests leave a few tables written.
    """
    leaves = (await connection.execute(_LEAVES, {"tables": list(tables)})).scalars().all()
    holding = " UNION ALL ".join(
        f"SELECT '{leaf}' WHERE EXISTS (SELECT FROM ONLY {leaf})" for leaf in leaves
    )
    written = (await connection.execute(text(holding))).scalars().all()
    if written:
        await connection.execute(text(f"TRUNCATE {', '.join(written)} CASCADE"))
    await connection.execute(_RESTART_SEQUENCES)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def count_rows(
    session_factory: async_sessionmaker[AsyncSession], table: str | type[Base]
) -> int:
    """The rows of ``table``, given by name or by model."""
    name = table if isinstance(table, str) else table.__tablename__
    async with session_factory() as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {name}"))).scalar_one())


async def add_profile(uow_factory: MakeUow, username: str = "ada") -> ProfileView:
    payload = schemas.CreateProfile(
        username=username, email=f"{username}@example.com", full_name="Ada Lovelace"
    )
    async with uow_factory() as uow:
        return await services.create_profile(uow, payload)


async def add_experiment(uow_factory: MakeUow, owner_id: int, name: str = "exp") -> ExperimentView:
    async with uow_factory() as uow:
        return await services.create_experiment(
            uow, schemas.CreateExperiment(owner_id=owner_id, name=name)
        )


async def add_run(uow_factory: MakeUow, experiment_id: int) -> RunView:
    async with uow_factory() as uow:
        return await services.start_run(uow, schemas.StartRun(experiment_id=experiment_id))


async def add_tracked_run(uow_factory: MakeUow, username: str = "ada") -> RunView:
    """A profile, an experiment and a running run: what metric tests need."""
    owner = await add_profile(uow_factory, username)
    experiment = await add_experiment(uow_factory, owner.id)
    return await add_run(uow_factory, experiment.id)


async def record(uow_factory: MakeUow, run_id: int, steps: range, name: str = "loss"):
    points = [{"name": name, "step": step, "value": step * 0.5} for step in steps]
    payload = schemas.RecordMetrics.model_validate({"run_id": run_id, "points": points})
    async with uow_factory() as uow:
        return await services.record_metrics(uow, payload)
