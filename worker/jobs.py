"""The job adapters arq runs. Each hands one validated payload to one use case.

Producers call them by name with one JSON object (or keyword arguments), e.g.
``await redis.enqueue_job("record_metric", {"run_id": 1, "name": "loss", "step": 3,
"value": 0.25})``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from arq.worker import Function, func
from pydantic import BaseModel

from domain import schemas, services
from domain.uow import UnitOfWork
from worker.fanout import generate_profiles
from worker.runner import payload_from, run_use_case

P = TypeVar("P", bound=BaseModel)
JobResult = dict[str, Any]


def job(
    name: str,
    schema: type[P],
    use_case: Callable[[UnitOfWork, P], Awaitable[BaseModel]],
    *,
    timeout: int | None = None,
) -> Function:
    """An arq function named ``name`` that runs ``use_case`` on a ``schema`` payload."""

    async def adapter(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> JobResult:
        return await run_use_case(ctx, name, schema, payload_from(name, args, kwargs), use_case)

    adapter.__name__ = adapter.__qualname__ = name
    adapter.__doc__ = use_case.__doc__
    return func(adapter, name=name, timeout=timeout)


JOBS: tuple[Function, ...] = (
    func(generate_profiles, name="generate_profiles", timeout=60),
    job("generate_profiles_chunk", schemas.GenerateChunk, services.generate_chunk, timeout=120),
    job("create_profile", schemas.CreateProfile, services.create_profile),
    job("update_profile", schemas.UpdateProfile, services.update_profile),
    job("create_experiment", schemas.CreateExperiment, services.create_experiment),
    job("start_run", schemas.StartRun, services.start_run),
    job("finish_run", schemas.FinishRun, services.finish_run),
    job("record_metric", schemas.RecordMetric, services.record_metric),
    job("record_metrics", schemas.RecordMetrics, services.record_metrics),
    job("fail_stale_runs", schemas.FailStaleRuns, services.fail_stale_runs),
    job("prune_job_history", schemas.PruneJobHistory, services.prune_job_history),
)

JOB_NAMES = frozenset(f.name for f in JOBS)
