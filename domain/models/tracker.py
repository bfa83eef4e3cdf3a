from __future__ import annotations

from datetime import datetime
from typing import get_args

from sqlalchemy import (
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from domain.db import NOW, Base, UTCDateTime
from domain.models.profile import BigId, Profile
from domain.schemas import ExperimentStatus, RunStatus

EXPERIMENT_STATUSES: tuple[str, ...] = get_args(ExperimentStatus)
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)


def _status_check(statuses: tuple[str, ...]) -> CheckConstraint:
    allowed = ", ".join(f"'{s}'" for s in statuses)
    return CheckConstraint(f"status IN ({allowed})", name="status")


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        UniqueConstraint("owner_id", "name"),
        _status_check(EXPERIMENT_STATUSES),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="created", server_default="created")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=NOW)

    owner: Mapped[Profile] = relationship(back_populates="experiments", lazy="raise")
    runs: Mapped[list[Run]] = relationship(
        back_populates="experiment", lazy="raise", passive_deletes=True, order_by="Run.id"
    )


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        _status_check(RUN_STATUSES),
        Index("ix_runs_running_last_activity", "status", "last_activity_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    seed: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=NOW)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped (coarsely) when metrics arrive, so the stale-run sweep needs no scan of metrics.
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=NOW)
    failure_reason: Mapped[str | None] = mapped_column(Text)

    experiment: Mapped[Experiment] = relationship(back_populates="runs", lazy="raise")


# The largest finite double: NaN and the infinities fall outside (PostgreSQL orders NaN above
# every number), so every aggregate over a run is a number.
_FINITE = "value >= -1.7976931348623157e308 AND value <= 1.7976931348623157e308"


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (
        # INCLUDE (value): summaries and downsampled histories are index-only scans
        # (migration 0003 has the figures).
        UniqueConstraint("run_id", "name", "step", postgresql_include=["value"]),
        CheckConstraint("step >= 0", name="step_non_negative"),
        CheckConstraint(_FINITE, name="value_finite"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Double)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=NOW)
