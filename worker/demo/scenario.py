"""The demo's story, told through real jobs: profiles, an experiment, a run and its metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.models import Profile
from worker.demo.jobs import Jobs, Steps
from worker.demo.setup import DemoError
from worker.jobs import FAIL_STALE_RUNS, PRUNE_JOB_HISTORY, chunk_job_id

METRIC_NAMES = ("loss", "accuracy")
DEMO_CHUNKS = 4  # enough chunk jobs to watch the fan-out, whatever the profile count
MIN_CHUNK_SIZE = 100


@dataclass(frozen=True)
class Plan:
    profiles: int
    metric_batches: int
    batch_size: int
    max_chunk_size: int
    tag: str  # keeps this run's generation key and experiment name apart from earlier runs

    @property
    def chunk_size(self) -> int:
        wanted = max(MIN_CHUNK_SIZE, math.ceil(self.profiles / DEMO_CHUNKS))
        return min(wanted, self.max_chunk_size)

    @property
    def metric_points(self) -> int:
        return self.metric_batches * self.batch_size


@dataclass
class Scenario:
    jobs: Jobs
    steps: Steps
    engine: AsyncEngine
    plan: Plan

    async def play(self) -> None:
        generation_id = await self.generate_profiles()
        profile_id = await self.first_profile_of(generation_id)
        await self.update_profile(profile_id)
        experiment_id = await self.create_experiment(profile_id)
        run_id = await self.start_run(experiment_id)
        await self.record_metrics(run_id)
        await self.resend_a_batch(run_id)
        await self.finish_run(run_id)
        await self.run_cron_jobs()

    async def generate_profiles(self) -> int:
        plan = self.plan
        step = self.steps.start("generate profiles", f"Generating {plan.profiles:,} profiles", 1)
        payload = {
            "count": plan.profiles,
            "chunk_size": plan.chunk_size,
            "seed": 42,
            "key": f"demo-{plan.tag}",
        }
        fanned_out = await self.jobs.call("generate_profiles", payload)
        generation_id, chunks = int(fanned_out["generation_id"]), int(fanned_out["chunks"])
        step.resize(plan.profiles)
        inserted = 0
        for index in range(chunks):
            chunk = self.jobs.existing(chunk_job_id(generation_id, index, str(fanned_out["key"])))
            outcome = await self.jobs.outcome("generate_profiles_chunk", chunk)
            inserted += int(outcome.get("inserted", 0))
            step.advance(int(outcome.get("inserted", 0)))
        step.done(f"Generated {inserted:,} profiles in {chunks} chunk jobs")
        return generation_id

    async def first_profile_of(self, generation_id: int) -> int:
        # Generated usernames end in .g<generation>n<index>: this is the generation's first.
        statement = select(Profile.id).where(Profile.username.endswith(f".g{generation_id}n0"))
        async with self.engine.connect() as connection:
            profile_id = await connection.scalar(statement)
        if profile_id is None:
            raise DemoError(f"generation {generation_id} left no profile behind")
        return int(profile_id)

    async def update_profile(self, profile_id: int) -> None:
        step = self.steps.start("update profile", f"Updating profile {profile_id}")
        changes = {"bio": "Ran the jobs demo and watched every job land in the database."}
        payload = {"profile_id": profile_id, "changes": changes, "expected_version": 1}
        updated = await self.jobs.call("update_profile", payload)
        step.done(f"Updated profile {updated['username']} to version {updated['version']}")

    async def create_experiment(self, owner_id: int) -> int:
        step = self.steps.start("create experiment", "Creating an experiment")
        payload = {"owner_id": owner_id, "name": f"demo-{self.plan.tag}", "description": "demo"}
        experiment = await self.jobs.call("create_experiment", payload)
        step.done(f"Created experiment {experiment['name']} (id {experiment['id']})")
        return int(experiment["id"])

    async def start_run(self, experiment_id: int) -> int:
        step = self.steps.start("start run", "Starting a run")
        run = await self.jobs.call("start_run", {"experiment_id": experiment_id, "seed": 7})
        step.done(f"Started run {run['id']}")
        return int(run["id"])

    async def record_metrics(self, run_id: int) -> None:
        plan = self.plan
        step = self.steps.start(
            "record metrics",
            f"Recording {plan.metric_points:,} metric points in {plan.metric_batches} batches",
            plan.metric_points,
        )
        # All batches are queued at once, so the worker takes them as fast as it can.
        queued = [
            await self.jobs.enqueue("record_metrics", self._batch(run_id, index))
            for index in range(plan.metric_batches)
        ]
        inserted = 0
        for job in queued:
            outcome = await self.jobs.outcome("record_metrics", job)
            inserted += int(outcome["inserted"])
            step.advance(int(outcome["received"]))
        step.done(f"Recorded {inserted:,} metric points in {plan.metric_batches} batch jobs")

    async def resend_a_batch(self, run_id: int) -> None:
        step = self.steps.start("re-send a batch", "Re-sending batch 1, as a retrying client would")
        outcome = await self.jobs.call("record_metrics", self._batch(run_id, 0))
        step.done(
            f"Re-sent batch 1: {outcome['inserted']} new points, "
            f"{outcome['duplicates']:,} duplicates skipped"
        )

    async def finish_run(self, run_id: int) -> None:
        step = self.steps.start("finish run", f"Finishing run {run_id}")
        finished = await self.jobs.call("finish_run", {"run_id": run_id, "status": "completed"})
        step.done(f"Finished run {run_id} as {finished['run']['status']}")

    async def run_cron_jobs(self) -> None:
        step = self.steps.start("cron jobs", "Running each cron job once", 2)
        stale = await self.jobs.call(FAIL_STALE_RUNS.cron_name)
        step.advance()
        pruned = await self.jobs.call(PRUNE_JOB_HISTORY.cron_name)
        step.done(
            f"Cron jobs: {len(stale['run_ids'])} stale runs failed, "
            f"{pruned['deleted']} old job records pruned"
        )

    def _batch(self, run_id: int, index: int) -> dict[str, Any]:
        """``batch_size`` points, both metric names, steps following on from the last batch."""
        size = self.plan.batch_size
        points = []
        for position in range(index * size, (index + 1) * size):
            name = METRIC_NAMES[position % len(METRIC_NAMES)]
            step = position // len(METRIC_NAMES)
            points.append({"name": name, "step": step, "value": _curve(name, step)})
        return {"run_id": run_id, "points": points}


def _curve(name: str, step: int) -> float:
    """A plausible training curve: loss falls, accuracy rises."""
    if name == "loss":
        return round(2.3 * math.exp(-step / 800) + 0.05, 6)
    return round(1 - 0.9 * math.exp(-step / 600), 6)
