"""Tables that make at-least-once delivery look exactly-once, and keep job history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_args

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import NOW, Base, UTCDateTime
from domain.history_queries import UNHANDLED_FAILURE, JobState
from domain.models.profile import BigId

# A job's state in the history, written when one of its tries ends (or it is cancelled).
# Queued and running are Redis's to say: a row per job start would cost every job a
# round trip to PostgreSQL.
JOB_STATES: tuple[str, ...] = get_args(JobState)
HAS_PARENT = "parent_id IS NOT NULL"
# Successes are the bulk of the history: a list of them reads the finished_at index and
# finds one in nearly every row, so the (status, finished_at) index keeps only the rest,
# and a success writes one index entry fewer (80 bytes of WAL, the job's 3rd of 4).
NOT_SUCCEEDED = "status <> 'succeeded'"
# The history is partitioned by the time a job was enqueued, one partition a day
# (domain/repositories/history_partitions.py makes and drops them): the retention drops
# a day whole, without deleting rows one by one. A key of a partitioned table holds the
# partition key, so the ledger's key is (job_id, enqueued_at): every delivery of one
# enqueued job carries the same time, fixed by its producer; a job id enqueued again
# later is found by its id first (JobRecordRepository), so it is still recorded once
# (an id its enqueue minted needs no look: no other enqueue can have used it).
HISTORY_PARTITIONING = {"postgresql_partition_by": "RANGE (enqueued_at)"}


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
    """A job's latest state; its success is written in the same transaction as its effect.

    The columns of the last try (start, end, worker, error) describe the try that set the
    state; tries that ended in a retry are kept in ``job_tries`` as well.
    """

    __tablename__ = "job_records"
    __table_args__ = (
        CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in JOB_STATES)), name="status"
        ),
        Index(
            "ix_job_records_status_finished_at",
            "status",
            "finished_at",
            postgresql_where=text(NOT_SUCCEEDED),
            sqlite_where=text(NOT_SUCCEEDED),
        ),
        Index("ix_job_records_function_finished_at", "function", "finished_at"),
        # A submission's jobs by state, in order: on parent_id alone PostgreSQL ANDed in
        # the status index to find a submission's few failures, reading every failure.
        # Jobs enqueued on their own have no parent, and no entry to write.
        Index(
            "ix_job_records_parent_status_finished_at",
            "parent_id",
            "status",
            "finished_at",
            postgresql_where=text(HAS_PARENT),
            sqlite_where=text(HAS_PARENT),
        ),
        Index(
            "ix_job_records_unhandled_failures",
            "finished_at",
            postgresql_where=text(UNHANDLED_FAILURE),
            sqlite_where=text(UNHANDLED_FAILURE),
        ),
        HISTORY_PARTITIONING,
    )

    job_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    # When the producer enqueued the job (arq's enqueue time): the partition key.
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    function: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    # The submission a job belongs to (the batches of one file, the chunks of a generation).
    parent_id: Mapped[str | None] = mapped_column(String(200))
    tries: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    error_type: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    # False for a failure that running the same payload again cannot change (an invalid
    # payload, an unknown id...): `dbjobs retry` asks for --force.
    retryable: Mapped[bool | None] = mapped_column(Boolean)
    worker: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A failure someone has looked at: `dbjobs failed` no longer lists it.
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobTry(Base):
    """A try that ended in a retry, with its error and when the next one was due."""

    __tablename__ = "job_tries"
    # Partitioned as job_records, on the job's own enqueue time, so that a day of tries
    # goes with its day of jobs. No foreign key: PostgreSQL refuses to detach a partition
    # that rows of another table's partition still refer to, even one detached itself.
    __table_args__ = (HISTORY_PARTITIONING,)

    # A job's tries in order, read by the key's leading columns: no serial id (SQLite
    # cannot count one in a key of several columns), and no second index to keep.
    job_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    try_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
