"""Writing metric points: new, duplicate (the stored value sent again) or conflict (another
value for a stored step), for a run that accepts points, in one transaction.

PostgreSQL's statements are in ``metric_writes_pg``; SQLite (the demo, tests) reads what is
stored and decides here, in Python, point by point (the fakes of the tests do the same).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import RunEnded, RunNotFound
from domain.models import Metric, Run
from domain.views import MAX_CONFLICTS_NAMED, ConflictingPoint

Key = tuple[str, int]
Point = Mapping[str, Any]  # name, step, value and maybe recorded_at

# Metrics arrive many times a second; the run's activity stamp only needs to be this fresh.
ACTIVITY_RESOLUTION = timedelta(seconds=5)


@dataclass(frozen=True)
class MetricWrite:
    """What a batch asks for: its points (name, step, value, recorded_at: None for the time
    of the write) and its policy."""

    run_id: int
    points: Sequence[Point]
    overwrite: bool
    now: datetime
    late: timedelta

    @property
    def stale_before(self) -> datetime:
        """A run's activity stamp older than this is moved to ``now``."""
        return self.now - ACTIVITY_RESOLUTION

    @property
    def ended_after(self) -> datetime:
        """A run that ended before this accepts no more points."""
        return self.now - self.late


@dataclass
class Written:
    """What the points became; the rest of those received were duplicates."""

    inserted: int = 0
    conflicts: int = 0
    overwritten: int = 0
    conflicting: list[ConflictingPoint] = field(default_factory=list)

    def add(self, other: Written) -> None:
        self.inserted += other.inserted
        self.conflicts += other.conflicts
        self.overwritten += other.overwritten
        room = MAX_CONFLICTS_NAMED - len(self.conflicting)
        self.conflicting += other.conflicting[:room]


def refuse_unless_accepting(
    write: MetricWrite, status: str | None, ended_at: datetime | None
) -> None:
    if status is None:
        raise RunNotFound(write.run_id)
    if status != "running" and (ended_at is None or ended_at < write.ended_after):
        raise RunEnded(write.run_id, status, ended_at, int(write.late.total_seconds()))


_RUNS_TABLE = cast(Table, Run.__table__)
_METRICS_TABLE = cast(Table, Metric.__table__)
_METRICS = _METRICS_TABLE.c
_SQLITE_INSERT = sqlite.insert(_METRICS_TABLE).on_conflict_do_nothing(
    index_elements=["run_id", "name", "step"]
)


async def write_portable(session: AsyncSession, write: MetricWrite) -> Written:
    """Each point against what the points before it left, in the order sent.

    SQLite runs one writer at a time, so what is read here stays true until the commit.
    """
    run = (
        await session.execute(
            select(_RUNS_TABLE.c.status, _RUNS_TABLE.c.ended_at).where(
                _RUNS_TABLE.c.id == write.run_id
            )
        )
    ).one_or_none()
    refuse_unless_accepting(write, *(run or (None, None)))
    settled = settle(write, await _stored_values(session, write.run_id, write.points))
    if settled.new:
        rows = [stored_row(write, point) for point in settled.new.values()]
        await session.execute(_SQLITE_INSERT, rows)
    for point in settled.changed.values():
        await session.execute(_overwrite(stored_row(write, point)))
    return settled.written


@dataclass(frozen=True)
class Settled:
    written: Written
    new: dict[Key, Point]  # to insert
    changed: dict[Key, Point]  # stored steps to overwrite


def settle(write: MetricWrite, stored: dict[Key, Any]) -> Settled:
    """Each point against what the points before it left (``stored`` is updated)."""
    settled = Settled(Written(), {}, {})
    for point in write.points:
        key = (point["name"], point["step"])
        value = stored.get(key, _ABSENT)
        if value is _ABSENT:
            settled.new[key] = point
            stored[key] = point["value"]
            settled.written.inserted += 1
        elif value != point["value"]:
            settled.written.add(_conflict(key, value, point, write.overwrite))
            if write.overwrite:
                stored[key] = point["value"]
                (settled.new if key in settled.new else settled.changed)[key] = point
    return settled


_ABSENT = object()


def _conflict(key: Key, stored: Any, point: Point, overwrite: bool) -> Written:
    sent = point["value"]
    named = ConflictingPoint(name=key[0], step=key[1], stored=stored, sent=sent)
    return Written(conflicts=1, overwritten=int(overwrite), conflicting=[named])


def stored_row(write: MetricWrite, point: Point) -> dict[str, Any]:
    return {**point, "run_id": write.run_id, "recorded_at": point.get("recorded_at") or write.now}


def _overwrite(row: dict[str, Any]) -> Any:
    return (
        update(_METRICS_TABLE)
        .where(
            _METRICS.run_id == row["run_id"],
            _METRICS.name == row["name"],
            _METRICS.step == row["step"],
        )
        .values(value=row["value"], recorded_at=row["recorded_at"])
    )


async def _stored_values(
    session: AsyncSession, run_id: int, points: Sequence[Point]
) -> dict[Key, Any]:
    """The stored values of the batch's steps, read per name over the batch's step range
    (a few names at a time: SQLite bounds an expression's depth)."""
    ranges: dict[str, tuple[int, int]] = {}
    for point in points:
        low, high = ranges.get(point["name"], (point["step"], point["step"]))
        ranges[point["name"]] = (min(low, point["step"]), max(high, point["step"]))
    wanted = {(p["name"], p["step"]) for p in points}
    names = list(ranges.items())
    stored: dict[Key, Any] = {}
    for start in range(0, len(names), _NAMES_PER_READ):
        statement = select(_METRICS.name, _METRICS.step, _METRICS.value).where(
            _METRICS.run_id == run_id,
            or_(
                *(
                    and_(_METRICS.name == name, _METRICS.step.between(low, high))
                    for name, (low, high) in names[start : start + _NAMES_PER_READ]
                )
            ),
        )
        for name, step, value in (await session.execute(statement)).all():
            if (name, step) in wanted:
                stored[name, step] = value
    return stored


_NAMES_PER_READ = 100
