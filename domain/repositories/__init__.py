"""Data access. Repositories flush but never commit: the unit of work owns the transaction."""

from domain.repositories.bookkeeping import (
    GenerationRepository,
    JobRecordRepository,
    JobStamp,
    LedgerRowExists,
)
from domain.repositories.metric_reads import MetricReads
from domain.repositories.profiles import ProfileRepository
from domain.repositories.tracker import ExperimentRepository, MetricRepository, RunRepository

__all__ = [
    "ExperimentRepository",
    "GenerationRepository",
    "JobRecordRepository",
    "JobStamp",
    "LedgerRowExists",
    "MetricReads",
    "MetricRepository",
    "ProfileRepository",
    "RunRepository",
]
