"""What use cases return: plain, JSON-able snapshots, never live ORM objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class View(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class ProfileView(View):
    id: int
    username: str
    email: str
    full_name: str
    bio: str
    version: int
    created_at: datetime
    updated_at: datetime


class RunView(View):
    id: int
    experiment_id: int
    status: str
    seed: int | None
    started_at: datetime
    ended_at: datetime | None
    failure_reason: str | None = None


class ExperimentView(View):
    id: int
    owner_id: int
    name: str
    description: str
    status: str
    created_at: datetime


class ExperimentSummary(ExperimentView):
    run_count: int


class ExperimentDetail(ExperimentView):
    runs: list[RunView]


class FinishedRun(View):
    run: RunView
    changed: bool


class GenerationPlan(View):
    generation_id: int
    key: str
    total: int
    chunk_size: int
    chunks: int


class ChunkOutcome(View):
    generation_id: int
    chunk_index: int
    inserted: int
    duplicate: bool


class GenerationStatus(View):
    generation_id: int
    total: int
    chunks: int
    chunks_done: int
    rows_done: int

    @property
    def done(self) -> bool:
        return self.chunks_done >= self.chunks


class RetryPlan(View):
    function: str
    payload: dict[str, Any]
    attempt_id: str


class MetricsRecorded(View):
    run_id: int
    received: int
    inserted: int
    duplicates: int


class StaleRunsFailed(View):
    run_ids: list[int]


class HistoryPruned(View):
    deleted: int
    cutoff: datetime
