"""Arrange steps for the service tests: each runs one use case in its own fake unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain import schemas, services
from domain.repositories import JobStamp
from domain.views import ExperimentView, ProfileView, RunView
from tests.support.fakes import FakeStore, FakeUnitOfWork


@dataclass
class Tracker:
    store: FakeStore

    def uow(self, job: JobStamp | None = None) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.store, job)

    async def profile(self, username: str = "ada") -> ProfileView:
        payload = schemas.CreateProfile(
            username=username, email=f"{username}@example.com", full_name="Ada Lovelace"
        )
        async with self.uow() as uow:
            return await services.create_profile(uow, payload)

    async def experiment(self, owner_id: int, name: str = "exp") -> ExperimentView:
        payload = schemas.CreateExperiment(owner_id=owner_id, name=name)
        async with self.uow() as uow:
            return await services.create_experiment(uow, payload)

    async def run(self, experiment_id: int) -> RunView:
        async with self.uow() as uow:
            return await services.start_run(uow, schemas.StartRun(experiment_id=experiment_id))

    def set_last_activity(self, run_id: int, when: datetime) -> None:
        self.store.rows["runs"][run_id]["last_activity_at"] = when

    def experiment_status(self, experiment_id: int) -> str:
        status: str = self.store.rows["experiments"][experiment_id]["status"]
        return status
