"""A schema change, simulated: the registry of the next deploy, for tests of rolling deploys.

In it ``record_metric`` is at version 2, whose payload names the metric ``metric`` (version
1 said ``name``), with the upgrader from 1 to 2: what a real change of a payload's schema
looks like (README.md, "Rolling deploys"). ``use_next_registry`` puts it in place of the
job in this process's registry; ``arq worker.testing.schema_change.WorkerSettings`` is a
worker of that next deploy, beside workers of today's.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from domain import schemas
from domain.services import handler_for
from domain.uow import UnitOfWork
from worker.registry import JOBS, RECORD_METRIC, Job

NEXT_VERSION = RECORD_METRIC.version + 1


class RecordMetricNext(schemas.Payload):
    """Record one metric point of a run (its name as ``metric``)."""

    run_id: schemas.Id
    metric: schemas.MetricName = Field(description="Metric name, e.g. loss.")
    step: schemas.Step
    value: schemas.FiniteFloat
    late_seconds: schemas.LateSeconds = schemas.DEFAULT_LATE_METRICS_SECONDS


def metric_renamed(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload of version 1 as version 2 reads it."""
    upgraded = {key: value for key, value in payload.items() if key != "name"}
    return {**upgraded, "metric": payload["name"]}


async def record_metric_next(uow: UnitOfWork, payload: RecordMetricNext) -> BaseModel:
    fields = payload.model_dump(exclude={"metric"})
    return await handler_for(schemas.RecordMetric)(
        uow, schemas.RecordMetric(name=payload.metric, **fields)
    )


RECORD_METRIC_NEXT = Job(
    RECORD_METRIC.name,
    RecordMetricNext,
    arguments=("run_id", "metric", "step", "value"),
    defaults=RECORD_METRIC.defaults,
    use_case=record_metric_next,
    version=NEXT_VERSION,
    upgraders={RECORD_METRIC.version: metric_renamed},
)


def use_next_registry() -> None:
    """This process's registry becomes the next deploy's (producers and workers alike)."""
    JOBS[RECORD_METRIC.name] = RECORD_METRIC_NEXT


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        from worker.main import prepare_worker
        from worker.settings import Settings

        use_next_registry()
        return prepare_worker(Settings())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
