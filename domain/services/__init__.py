"""The use cases. Each takes an open unit of work and commits it at most once."""

from domain.services.maintenance import fail_stale_runs, prune_job_history
from domain.services.profiles import (
    create_profile,
    generate_chunk,
    generation_status,
    get_profile,
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

__all__ = [
    "create_experiment",
    "create_profile",
    "fail_stale_runs",
    "finish_run",
    "generate_chunk",
    "generation_status",
    "get_experiment",
    "get_profile",
    "list_experiments",
    "prune_job_history",
    "record_metric",
    "record_metrics",
    "start_generation",
    "start_run",
    "update_profile",
]
