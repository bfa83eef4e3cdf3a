"""The use cases. Each takes an open unit of work and commits it at most once.

``HANDLERS`` maps each command (a payload schema) to the use case that carries it out, as
cosmicpython's ``COMMAND_HANDLERS`` does: the worker's job registry gives each command a
queue name, a timeout and a schedule, and finds its use case here.
"""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from domain import schemas
from domain.services.history import (
    LostJob,
    cancel_job,
    close_lost_jobs,
    get_job,
    get_submission,
    job_flow,
    list_children,
    list_failed,
    list_jobs,
    mark_handled,
    open_retries,
    plan_retry,
    recent_counts,
    recent_unhandled_failures,
)
from domain.services.maintenance import fail_stale_runs, prune_job_history
from domain.services.metric_reads import (
    experiment_runs,
    metric_history,
    metric_page,
    run_summary,
)
from domain.services.profiles import (
    create_profile,
    generate_chunk,
    generation_status,
    get_profile,
    list_profiles,
    start_generation,
    update_profile,
)
from domain.services.tracker import (
    create_experiment,
    finish_run,
    get_experiment,
    list_experiments,
    record_metric,
    record_metrics,
    start_run,
)
from domain.uow import UnitOfWork

P = TypeVar("P", bound=schemas.Payload)
UseCase = Callable[[UnitOfWork, P], Awaitable[BaseModel]]

HANDLERS: dict[type[schemas.Payload], UseCase[Any]] = {
    schemas.GenerateProfiles: start_generation,
    schemas.GenerateChunk: generate_chunk,
    schemas.CreateProfile: create_profile,
    schemas.UpdateProfile: update_profile,
    schemas.CreateExperiment: create_experiment,
    schemas.StartRun: start_run,
    schemas.FinishRun: finish_run,
    schemas.RecordMetric: record_metric,
    schemas.RecordMetrics: record_metrics,
    schemas.FailStaleRuns: fail_stale_runs,
    schemas.PruneJobHistory: prune_job_history,
}


def handler_for(schema: type[P]) -> UseCase[P]:
    return HANDLERS[schema]


__all__ = [
    "HANDLERS",
    "LostJob",
    "UseCase",
    "cancel_job",
    "close_lost_jobs",
    "create_experiment",
    "create_profile",
    "experiment_runs",
    "fail_stale_runs",
    "finish_run",
    "generate_chunk",
    "generation_status",
    "get_experiment",
    "get_job",
    "get_profile",
    "get_submission",
    "handler_for",
    "job_flow",
    "list_children",
    "list_experiments",
    "list_failed",
    "list_jobs",
    "list_profiles",
    "mark_handled",
    "metric_history",
    "metric_page",
    "open_retries",
    "plan_retry",
    "prune_job_history",
    "recent_counts",
    "recent_unhandled_failures",
    "record_metric",
    "record_metrics",
    "run_summary",
    "start_generation",
    "start_run",
    "update_profile",
]
