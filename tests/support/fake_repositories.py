"""In-memory repositories: the real ones' contracts over plain rows, no I/O.

Committed state is plain rows per table (``FakeStore``). A ``FakeSession`` works on a copy
of those rows through the objects it hands out (its identity map), the way a session
works inside its transaction. Unique keys raise the same domain errors as the real
repositories.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import inspect

from domain.db import Base, utcnow
from domain.errors import AlreadyExists
from domain.generator import ProfileRow
from domain.limits import chunk_count
from domain.models import Experiment, Profile, ProfileGeneration, Run
from domain.repositories import JobStamp
from domain.repositories.history_partitions import Forgotten
from domain.repositories.metric_writes import (
    MetricWrite,
    Written,
    refuse_unless_accepting,
    settle,
    stored_row,
)
from domain.repositories.tracker import ACTIVITY_RESOLUTION
from domain.views import GenerationStatus

M = TypeVar("M", bound=Base)
Rows = dict[str, dict[Any, dict[str, Any]]]
Identified = Profile | Experiment | Run | ProfileGeneration

TABLES = ("profiles", "experiments", "runs", "metrics", "generations", "chunks", "jobs")


def _columns(model: type[Base]) -> list[str]:
    return [attribute.key for attribute in inspect(model).column_attrs]


def _row_of(obj: Base) -> dict[str, Any]:
    return {key: getattr(obj, key) for key in _columns(type(obj))}


class FakeStore:
    """What a database would keep between units of work."""

    def __init__(self) -> None:
        self.rows: Rows = {table: {} for table in TABLES}
        self.commits = 0
        self._ids = itertools.count(1)  # like a sequence: not rolled back

    def next_id(self) -> int:
        return next(self._ids)


class FakeSession:
    """An identity map over a private copy of the store's rows."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.rows: Rows = copy.deepcopy(store.rows)
        self.loaded: dict[tuple[str, Any], Base] = {}

    def load(self, table: str, model: type[M], key: Any) -> M | None:
        if (table, key) not in self.loaded:
            row = self.rows[table].get(key)
            if row is None:
                return None
            self.loaded[table, key] = model(**row)
        found = self.loaded[table, key]
        assert isinstance(found, model)
        return found

    def add(self, table: str, obj: Identified) -> None:
        if obj.id is None:
            obj.id = self.store.next_id()
        self.loaded[table, obj.id] = obj

    def flush(self) -> None:
        for (table, key), obj in self.loaded.items():
            self.rows[table][key] = _row_of(obj)
        _check_unique(self.rows)

    def publish(self) -> None:
        self.flush()
        self.store.rows = copy.deepcopy(self.rows)

    def discard(self) -> None:
        self.rows = copy.deepcopy(self.store.rows)
        self.loaded.clear()


def _check_unique(rows: Rows) -> None:
    for field in ("username", "email"):
        values = [row[field] for row in rows["profiles"].values()]
        if len(values) != len(set(values)):
            raise AlreadyExists(f"{field} is already taken by another profile")
    names = [(row["owner_id"], row["name"]) for row in rows["experiments"].values()]
    if len(names) != len(set(names)):
        raise AlreadyExists("the owner already has an experiment of that name")


class FakeProfileRepository:
    def __init__(self, session: FakeSession) -> None:
        self.session = session

    async def add(self, profile: Profile) -> Profile:
        self.session.add("profiles", profile)
        await self.flush()
        return profile

    async def flush(self) -> None:
        self.session.flush()

    async def get(self, profile_id: int) -> Profile | None:
        return self.session.load("profiles", Profile, profile_id)

    async def get_for_update(self, profile_id: int) -> Profile | None:
        return await self.get(profile_id)

    async def exists(self, profile_id: int) -> bool:
        return profile_id in self.session.rows["profiles"]

    async def list_newest(
        self, *, username_prefix: str | None, email_prefix: str | None, limit: int
    ) -> list[Profile]:
        self.session.flush()
        found = []
        for key in sorted(self.session.rows["profiles"], reverse=True):
            profile = await self.get(key)
            assert profile is not None
            username, email = profile.username, profile.email
            if username.startswith(username_prefix or "") and email.startswith(email_prefix or ""):
                found.append(profile)
        return found[:limit]

    async def insert_many(self, profiles: Sequence[ProfileRow]) -> int:
        now = utcnow()
        for username, email, full_name, bio in profiles:
            self.session.add(
                "profiles",
                Profile(
                    username=username,
                    email=email,
                    full_name=full_name,
                    bio=bio,
                    created_at=now,
                    updated_at=now,
                    version=1,
                ),
            )
        await self.flush()
        return len(profiles)


class FakeExperimentRepository:
    def __init__(self, session: FakeSession) -> None:
        self.session = session

    async def add(self, experiment: Experiment) -> Experiment:
        self.session.add("experiments", experiment)
        self.session.flush()
        return experiment

    async def get(self, experiment_id: int) -> Experiment | None:
        return self.session.load("experiments", Experiment, experiment_id)

    async def list_with_run_counts(
        self, *, owner_id: int | None, status: str | None, limit: int
    ) -> list[tuple[Experiment, int]]:
        self.session.flush()
        runs = self.session.rows["runs"].values()
        found = []
        for key in sorted(self.session.rows["experiments"]):
            experiment = await self.get(key)
            assert experiment is not None
            if owner_id is not None and experiment.owner_id != owner_id:
                continue
            if status is not None and experiment.status != status:
                continue
            count = sum(1 for run in runs if run["experiment_id"] == key)
            found.append((experiment, count))
        return found[:limit]

    async def set_status(self, experiment_id: int, status: str) -> None:
        experiment = await self.get(experiment_id)
        if experiment is not None:
            experiment.status = status


class FakeRunRepository:
    def __init__(self, session: FakeSession) -> None:
        self.session = session

    async def add(self, run: Run) -> Run:
        self.session.add("runs", run)
        self.session.flush()
        return run

    async def get(self, run_id: int) -> Run | None:
        return self.session.load("runs", Run, run_id)

    async def get_for_update(self, run_id: int) -> Run | None:
        return await self.get(run_id)

    async def newest_of(self, experiment_id: int, *, limit: int) -> tuple[list[Run], int]:
        self.session.flush()
        keys = sorted(
            key
            for key, row in self.session.rows["runs"].items()
            if row["experiment_id"] == experiment_id
        )
        runs = [run for key in keys[-limit:] if (run := await self.get(key)) is not None]
        return runs, len(keys)

    async def touch(self, run_id: int, now: datetime) -> None:
        run = await self.get(run_id)
        if run is not None and run.last_activity_at < now - ACTIVITY_RESOLUTION:
            run.last_activity_at = now

    async def flush(self) -> None:
        self.session.flush()

    async def fail_stale(
        self, *, cutoff: datetime, now: datetime, reason: str
    ) -> list[tuple[int, int]]:
        failed = []
        for key in sorted(self.session.rows["runs"]):
            run = await self.get(key)
            assert run is not None
            if run.status == "running" and run.last_activity_at < cutoff:
                run.status, run.ended_at, run.failure_reason = "failed", now, reason
                failed.append((run.id, run.experiment_id))
        return failed

    async def experiment_ids_with_live_runs(self, experiment_ids: Sequence[int]) -> set[int]:
        return {
            row["experiment_id"]
            for row in self.session.rows["runs"].values()
            if row["experiment_id"] in experiment_ids and row["status"] == "running"
        }


class FakeMetricRepository:
    def __init__(self, session: FakeSession) -> None:
        self.session = session

    async def record(self, write: MetricWrite) -> Written:
        run = self.session.rows["runs"].get(write.run_id)
        if run is not None and run["last_activity_at"] < write.stale_before:
            run["last_activity_at"] = write.now
        refuse_unless_accepting(write, *((run["status"], run["ended_at"]) if run else (None, None)))
        rows = self.session.rows["metrics"]
        mine = {
            (name, step): row["value"] for (r, name, step), row in rows.items() if r == write.run_id
        }
        settled = settle(write, mine)
        for (name, step), point in {**settled.new, **settled.changed}.items():
            rows[write.run_id, name, step] = stored_row(write, point)
        return settled.written

    def new_points(self, write: MetricWrite) -> None:
        return None  # the fakes write the usual way


class FakeGenerationRepository:
    def __init__(self, session: FakeSession) -> None:
        self.session = session

    async def get_or_create(
        self, *, key: str, seed: int, total: int, chunk_size: int
    ) -> ProfileGeneration:
        for generation_id, row in self.session.rows["generations"].items():
            if row["key"] == key:
                found = await self.get(generation_id)
                assert found is not None
                return found
        generation = ProfileGeneration(
            key=key, seed=seed, total=total, chunk_size=chunk_size, created_at=utcnow()
        )
        self.session.add("generations", generation)
        self.session.flush()
        return generation

    async def get(self, generation_id: int) -> ProfileGeneration | None:
        return self.session.load("generations", ProfileGeneration, generation_id)

    async def claim_chunk(self, generation_id: int, chunk_index: int, rows: int) -> bool:
        chunks = self.session.rows["chunks"]
        if (generation_id, chunk_index) in chunks:
            return False
        chunks[generation_id, chunk_index] = {"rows_inserted": rows}
        return True

    async def status(self, generation_id: int) -> GenerationStatus | None:
        generation = await self.get(generation_id)
        if generation is None:
            return None
        done = [row for key, row in self.session.rows["chunks"].items() if key[0] == generation_id]
        return GenerationStatus(
            generation_id=generation_id,
            total=generation.total,
            chunks=chunk_count(generation.total, generation.chunk_size),
            chunks_done=len(done),
            rows_done=sum(row["rows_inserted"] for row in done),
        )


class FakeJobRecordRepository:
    def __init__(self, session: FakeSession) -> None:
        self.session = session

    async def record_success(self, stamp: JobStamp, **_recorded: object) -> bool:
        jobs = self.session.rows["jobs"]
        if jobs.get(stamp.job_id, {}).get("status") == "succeeded":
            return False
        jobs[stamp.job_id] = {"status": "succeeded", "finished_at": utcnow()}
        return True

    async def forget_before(self, cutoff: datetime) -> Forgotten:
        """As the partitioned history does, without its days: by each job's time."""
        jobs = self.session.rows["jobs"]
        old = [key for key, row in jobs.items() if row["finished_at"] < cutoff]
        forgotten = [key for key in old if not _kept(jobs[key])]
        for key in forgotten:
            del jobs[key]
        return Forgotten(rows=len(forgotten), days=0, kept=len(old) - len(forgotten))

    async def make_days(self, first: date, last: date) -> int:
        return 0


def _kept(row: dict[str, Any]) -> bool:
    unhandled = row["status"] == "failed" and row.get("handled_at") is None
    return row["status"] == "retrying" or unhandled
