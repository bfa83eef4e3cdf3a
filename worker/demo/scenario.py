"""The demo's story, told through real jobs: profiles, an experiment, a run and its metrics."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis
from arq.jobs import Job
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.models import Profile
from domain.schemas import smallest_chunk_size
from worker.arq_jobs import readable_job
from worker.registry import (
    CREATE_EXPERIMENT,
    FAIL_STALE_RUNS,
    FINISH_RUN,
    GENERATE_CHUNK,
    GENERATE_PROFILES,
    PRUNE_JOB_HISTORY,
    RECORD_METRICS,
    START_RUN,
    UPDATE_PROFILE,
    chunk_job_id,
)
from worker.serialization import JobError
from worker.testing.inprocess import Running, WorkerStopped
from worker.text import ExitCode, first_line

DEMO_CHUNKS = 4  # enough chunk jobs to watch the fan-out, whatever the profile count
METRIC_BATCHES, BATCH_SIZE = 5, 1_000
METRIC_NAMES = ("loss", "accuracy")
JOB_TIMEOUT_SECONDS = 120


class DemoError(Exception):
    """A failure worth one clear line to the user, and its exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        self.code = code
        super().__init__(message)


def brief(error: BaseException) -> str:
    return first_line(error, 300)


def chunk_size_for(profiles: int, largest: int) -> int:
    return max(smallest_chunk_size(profiles), min(largest, math.ceil(profiles / DEMO_CHUNKS)))


def new_progress(console: Console) -> Progress:
    """One line per step; in a narrow terminal the bar shrinks and a long line wraps, but
    the counts are never cut short."""
    return Progress(
        TextColumn("{task.description}", table_column=Column(overflow="fold")),
        BarColumn(bar_width=None, table_column=Column(ratio=1)),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        console=console,
        expand=True,
    )


@dataclass
class Scenario:
    """The demo's story, told through real jobs: profiles, an experiment, a run, metrics."""

    producer: ArqRedis
    worker: Running
    progress: Progress
    engine: AsyncEngine
    profiles: int
    chunk_size: int
    # Keeps this run's generation key and experiment name apart from earlier runs'.
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    tally: Counter[tuple[str, str]] = field(default_factory=Counter)  # (job, status): count

    def timings(self) -> list[tuple[str, float]]:
        return [(task.fields["step"], task.elapsed or 0.0) for task in self.progress.tasks]

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
        step = self.start("generate profiles", f"Generating {self.profiles:,} profiles")
        payload = {"count": self.profiles, "chunk_size": self.chunk_size, "seed": 42}
        fanned_out = await self.call(GENERATE_PROFILES.name, {**payload, "key": f"demo-{self.tag}"})
        generation_id, chunks = int(fanned_out["generation_id"]), int(fanned_out["chunks"])
        self.progress.update(step, total=self.profiles)
        inserted = 0
        for index in range(chunks):
            chunk_id = chunk_job_id(generation_id, index, str(fanned_out["key"]))
            chunk = readable_job(chunk_id, self.producer, self.producer.default_queue_name)
            outcome = await self.outcome(GENERATE_CHUNK.name, chunk)
            inserted += int(outcome.get("inserted", 0))
            self.progress.advance(step, int(outcome.get("inserted", 0)))
        self.done(step, f"Generated {inserted:,} profiles in {chunks} chunk jobs")
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
        step = self.start("update profile", f"Updating profile {profile_id}")
        changes = {"bio": "Ran the jobs demo and watched every job land in the database."}
        payload = {"profile_id": profile_id, "changes": changes, "expected_version": 1}
        updated = await self.call(UPDATE_PROFILE.name, payload)
        self.done(step, f"Updated profile {updated['username']} to version {updated['version']}")

    async def create_experiment(self, owner_id: int) -> int:
        step = self.start("create experiment", "Creating an experiment")
        payload = {"owner_id": owner_id, "name": f"demo-{self.tag}", "description": "demo"}
        experiment = await self.call(CREATE_EXPERIMENT.name, payload)
        self.done(step, f"Created experiment {experiment['name']} (id {experiment['id']})")
        return int(experiment["id"])

    async def start_run(self, experiment_id: int) -> int:
        step = self.start("start run", "Starting a run")
        run = await self.call(START_RUN.name, {"experiment_id": experiment_id, "seed": 7})
        self.done(step, f"Started run {run['id']}")
        return int(run["id"])

    async def record_metrics(self, run_id: int) -> None:
        points, batches = METRIC_BATCHES * BATCH_SIZE, METRIC_BATCHES
        step = self.start(
            "record metrics", f"Recording {points:,} metric points in {batches} batches", points
        )
        # All batches are queued at once, so the worker takes them as fast as it can.
        queued = [
            await self.enqueue(RECORD_METRICS.name, self._batch(run_id, index))
            for index in range(batches)
        ]
        inserted = 0
        for job in queued:
            outcome = await self.outcome(RECORD_METRICS.name, job)
            inserted += int(outcome["inserted"])
            self.progress.advance(step, int(outcome["received"]))
        self.done(step, f"Recorded {inserted:,} metric points in {batches} batch jobs")

    async def resend_a_batch(self, run_id: int) -> None:
        step = self.start("re-send a batch", "Re-sending batch 1, as a retrying client would")
        outcome = await self.call(RECORD_METRICS.name, self._batch(run_id, 0))
        new, duplicates = outcome["inserted"], outcome["duplicates"]
        self.done(step, f"Re-sent batch 1: {new} new points, {duplicates:,} duplicates skipped")

    async def finish_run(self, run_id: int) -> None:
        step = self.start("finish run", f"Finishing run {run_id}")
        finished = await self.call(FINISH_RUN.name, {"run_id": run_id, "status": "completed"})
        self.done(step, f"Finished run {run_id} as {finished['run']['state']}")

    async def run_cron_jobs(self) -> None:
        step = self.start("cron jobs", "Running each cron job once", 2)
        stale = await self.call(FAIL_STALE_RUNS.cron_name)
        self.progress.advance(step)
        pruned = await self.call(PRUNE_JOB_HISTORY.cron_name)
        stale_runs, old_records = len(stale["run_ids"]), pruned["deleted"]
        self.done(
            step, f"Cron jobs: {stale_runs} stale runs failed, {old_records} old job records pruned"
        )

    def _batch(self, run_id: int, index: int) -> dict[str, Any]:
        """``BATCH_SIZE`` points, both metric names, steps following on from the last batch."""
        points = []
        for position in range(index * BATCH_SIZE, (index + 1) * BATCH_SIZE):
            name = METRIC_NAMES[position % len(METRIC_NAMES)]
            step = position // len(METRIC_NAMES)
            points.append({"name": name, "step": step, "value": _curve(name, step)})
        return {"run_id": run_id, "points": points}

    def start(self, name: str, description: str, total: int = 1) -> TaskID:
        """A progress line for one step; its time goes to the report."""
        return self.progress.add_task(description, total=total, step=name)

    def done(self, step: TaskID, summary: str) -> None:
        [task] = [task for task in self.progress.tasks if task.id == step]
        self.progress.update(step, description=f"[green]✓[/] {summary}", completed=task.total)
        self.progress.stop_task(step)

    async def call(self, function: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.outcome(function, await self.enqueue(function, payload))

    async def enqueue(self, function: str, payload: dict[str, Any] | None = None) -> Job:
        job = await self.producer.enqueue_job(function, *(() if payload is None else (payload,)))
        if job is None:  # only a fixed job id can collide, and the demo uses none
            raise DemoError(f"{function} was not enqueued: a job with its id already exists")
        return job

    async def outcome(self, function: str, job: Job) -> dict[str, Any]:
        """The job's result; a failure, a stopped worker or a timeout ends the demo."""
        try:
            result = await self.worker.result(job, JOB_TIMEOUT_SECONDS)
        except WorkerStopped as stopped:
            why = brief(stopped.error) if stopped.error else "it stopped"
            raise DemoError(f"the worker stopped before job {function} ended: {why}") from None
        except TimeoutError:
            late = f"job {function} ({job.job_id}) did not finish within {JOB_TIMEOUT_SECONDS}s"
            raise DemoError(late, ExitCode.TIMEOUT) from None
        except JobError as error:
            self.tally[function, "failed"] += 1
            raise DemoError(f"job {function} failed: {error}") from None
        except Exception as error:
            self.tally[function, "failed"] += 1
            raise DemoError(f"job {function} failed: {brief(error)}") from error
        # A delivery the job ledger (or a chunk's own key) had already seen is a duplicate.
        duplicate = isinstance(result, dict) and result.get("duplicate") is True
        self.tally[function, "duplicate" if duplicate else "succeeded"] += 1
        return result if isinstance(result, dict) else {"result": result}


def _curve(name: str, step: int) -> float:
    """A plausible training curve: loss falls, accuracy rises."""
    if name == "loss":
        return round(2.3 * math.exp(-step / 800) + 0.05, 6)
    return round(1 - 0.9 * math.exp(-step / 600), 6)
