"""Tables that make at-least-once delivery look exactly-once, and keep job history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import NOW, Base, UTCDateTime
from domain.models.profile import BigId

JOB_OUTCOMES = ("succeeded", "failed")


class ProfileGeneration(Base):
    """One request to generate ``total`` profiles; its number keeps usernames unique."""

    __tablename__ = "profile_generations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    seed: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    chunk_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=NOW)


class GenerationChunk(Base):
    """The idempotency key of a chunk: its row commits with the chunk's profiles or not at all."""

    __tablename__ = "profile_generation_chunks"

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("profile_generations.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows_inserted: Mapped[int] = mapped_column(Integer)
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=NOW)


class JobRecord(Base):
    """A job's final outcome, written in the same transaction as its effect when it succeeds."""

    __tablename__ = "job_records"
    __table_args__ = (
        CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in JOB_OUTCOMES)), name="status"
        ),
    )

    job_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    function: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    tries: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    error_type: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
