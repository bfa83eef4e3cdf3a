from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import AlreadyExists, RunNotFound
from domain.models import Experiment, Metric, Run
from domain.repositories._sql import dialect_of, violated_constraint
from domain.repositories.metric_new_points import new_points
from domain.repositories.metric_writes import (
    ACTIVITY_RESOLUTION,
    MetricWrite,
    Written,
    write_portable,
)
from domain.repositories.metric_writes_pg import write_postgresql
from domain.repositories.one_statement import OneStatement

# Built once: every metric job runs it. Against the table rather than the ORM class, so no
# ORM bookkeeping (synchronize_session) runs for an UPDATE that loads nothing.
_RUNS_TABLE = cast(Table, Run.__table__)
_RUNS = _RUNS_TABLE.c
_TOUCH_RUN = (
    update(_RUNS_TABLE)
    .where(_RUNS.id == bindparam("run_id"), _RUNS.last_activity_at < bindparam("stale_before"))
    .values(last_activity_at=bindparam("now"))
)


class ExperimentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, experiment: Experiment) -> Experiment:
        self.session.add(experiment)
        try:
            await self.session.flush()
        except IntegrityError as error:
            where = violated_constraint(error)
            # PostgreSQL names the constraint; SQLite lists the columns.
            if (
                "uq_experiments_owner_id_name" in where
                or "experiments.owner_id, experiments.name" in where
            ):
                raise AlreadyExists(
                    f"profile {experiment.owner_id} already has an experiment named "
                    f"{experiment.name!r}"
                ) from error
            raise
        return experiment

    async def get(self, experiment_id: int) -> Experiment | None:
        return await self.session.get(Experiment, experiment_id)

    async def list_with_run_counts(
        self, *, owner_id: int | None, status: str | None, limit: int
    ) -> list[tuple[Experiment, int]]:
        statement = (
            select(Experiment, func.count(Run.id))
            .outerjoin(Run, Run.experiment_id == Experiment.id)
            .group_by(Experiment.id)
            .order_by(Experiment.id)
            .limit(limit)
        )
        if owner_id is not None:
            statement = statement.where(Experiment.owner_id == owner_id)
        if status is not None:
            statement = statement.where(Experiment.status == status)
        rows = (await self.session.execute(statement)).all()
        return [(experiment, int(count)) for experiment, count in rows]

    async def set_status(self, experiment_id: int, status: str) -> None:
        await self.session.execute(
            update(Experiment).where(Experiment.id == experiment_id).values(status=status)
        )


class RunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, run: Run) -> Run:
        self.session.add(run)
        await self.session.flush()
        return run

    async def get(self, run_id: int) -> Run | None:
        return await self.session.get(Run, run_id)

    async def get_for_update(self, run_id: int) -> Run | None:
        statement = select(Run).where(Run.id == run_id).with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def newest_of(self, experiment_id: int, *, limit: int) -> tuple[list[Run], int]:
        """The experiment's newest ``limit`` runs, oldest of them first, and how many runs
        it has in all."""
        newest = (
            select(Run).where(Run.experiment_id == experiment_id).order_by(Run.id.desc())
        ).limit(limit)
        runs = list((await self.session.scalars(newest)).all())
        if len(runs) < limit:
            return runs[::-1], len(runs)
        count = select(func.count()).select_from(Run).where(Run.experiment_id == experiment_id)
        return runs[::-1], int(await self.session.scalar(count) or 0)

    async def exists(self, run_id: int) -> bool:
        return await self.session.scalar(select(Run.id).where(Run.id == run_id)) is not None

    async def touch(self, run_id: int, now: datetime) -> None:
        """Mark the run active.

        The UPDATE only matches (and locks) the row when the stamp is stale, so concurrent
        metric writers to one run do not queue behind each other on every point.
        """
        params = {"run_id": run_id, "stale_before": now - ACTIVITY_RESOLUTION, "now": now}
        await self.session.execute(_TOUCH_RUN, params)

    async def flush(self) -> None:
        await self.session.flush()

    async def fail_stale(
        self, *, cutoff: datetime, now: datetime, reason: str
    ) -> list[tuple[int, int]]:
        """Fail running runs idle since before ``cutoff``: (run id, experiment id) pairs."""
        statement = (
            update(Run)
            .where(Run.status == "running", Run.last_activity_at < cutoff)
            .values(status="failed", ended_at=now, failure_reason=reason)
            .returning(Run.id, Run.experiment_id)
        )
        rows = (await self.session.execute(statement)).all()
        return sorted((run_id, experiment_id) for run_id, experiment_id in rows)

    async def experiment_ids_with_live_runs(self, experiment_ids: Sequence[int]) -> set[int]:
        statement = select(Run.experiment_id).where(
            Run.experiment_id.in_(experiment_ids), Run.status == "running"
        )
        return set((await self.session.scalars(statement)).all())


class MetricRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, write: MetricWrite) -> Written:
        """Store the points of a running run (or one ended within ``write.late``) and mark
        it active; a stored step sent again is a duplicate with the same value, else a
        conflict (overwritten only when asked). Raises ``RunNotFound`` or ``RunEnded``.
        """
        try:
            if dialect_of(self.session) == "postgresql":
                return await write_postgresql(self.session, write)  # touches the run too
            await RunRepository(self.session).touch(write.run_id, write.now)
            return await write_portable(self.session, write)
        except IntegrityError as error:  # the run deleted meanwhile
            if "fk_metrics_run_id_runs" in violated_constraint(error) or "FOREIGN KEY" in str(
                error.orig
            ):
                raise RunNotFound(write.run_id) from error
            raise

    def new_points(self, write: MetricWrite) -> OneStatement | None:
        """The write's points as new ones, in one statement (``metric_new_points``); None
        on SQLite."""
        return new_points(write) if dialect_of(self.session) == "postgresql" else None

    async def count(self, run_id: int) -> int:
        statement = select(func.count()).select_from(Metric).where(Metric.run_id == run_id)
        return int(await self.session.scalar(statement) or 0)
