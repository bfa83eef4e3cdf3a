"""The job registry: every job declared once, and everything else derived from it.

arq's functions and cron jobs (``worker.main``), the CLI's ``jobs enqueue`` commands and
``jobs retry`` read ``JOBS``. A job takes one JSON object, as its sole argument or as
keyword arguments, e.g. ``await redis.enqueue_job("record_metric", {"run_id": 1, "name":
"loss", "step": 3, "value": 0.25})``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from domain import schemas, services
from domain.uow import UnitOfWork
from domain.views import GenerationPlan

if TYPE_CHECKING:
    from worker.config import Settings
    from worker.deps import Deps

P = TypeVar("P", bound=schemas.Payload)
Defaults = Callable[["Settings", str], dict[str, Any]]
FanOut = Callable[["Deps", Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class Cron:
    """When every worker schedules the job (arq's ``cron`` fields); one tick commits once."""

    second: int = 0
    minute: int | None = None


@dataclass(frozen=True)
class Job(Generic[P]):
    """One job: its name on the queue, its payload, its use case, and how it is run."""

    name: str
    schema: type[P]
    use_case: Callable[[UnitOfWork, P], Awaitable[BaseModel]]
    timeout: int = 60  # seconds; keep it honest: arq holds a dead worker's job this long + 10 s
    max_tries: int | None = None  # None: JOBS_MAX_TRIES
    # Payload fields the worker fills in from its settings and the job id when not given.
    defaults: Defaults | None = None
    # Enqueues follow-up jobs after the use case commits, on every delivery until the job's
    # success is recorded: a re-delivery after a crash re-enqueues whatever is missing.
    fan_out: FanOut | None = None
    cron: Cron | None = None
    producers_enqueue_it: bool = True  # False: only other jobs do (generation chunks)
    # On the command line: the fields given as positional arguments, in order (the rest are
    # options named after their field), and options with a name of their own.
    arguments: tuple[str, ...] = ()
    option_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def command(self) -> str:
        """Its name on the command line: ``jobs enqueue record-metric``."""
        return self.name.replace("_", "-")

    def label(self, field_name: str) -> str:
        """What a user typed for a payload field: ``RUN_ID``, ``--owner``, ``--full-name``."""
        if field_name in self.arguments:
            return field_name.upper()
        return self.option_names.get(field_name, "--" + field_name.replace("_", "-"))

    @property
    def cron_name(self) -> str:
        return f"cron:{self.name}"

    @property
    def summary(self) -> str:
        return (self.use_case.__doc__ or self.name).strip().splitlines()[0]

    def complete(self, raw: Any, settings: Settings, job_id: str) -> Any:
        """The payload with the worker's defaults for the fields not given."""
        if self.defaults is None or not isinstance(raw, Mapping):
            return raw
        return {**self.defaults(settings, job_id), **raw}


def chunk_job_id(generation_id: int, chunk_index: int, key: str) -> str:
    """Fixed per chunk; the key keeps it unique even when a reset database reuses ids
    while Redis still remembers the old generation's chunk jobs."""
    return f"generation:{generation_id}:chunk:{chunk_index}:{key}"


async def enqueue_chunks(
    deps: Deps, payload: schemas.GenerateProfiles, plan: GenerationPlan
) -> None:
    for index in range(plan.chunks):
        await deps.redis.enqueue_job(
            GENERATE_CHUNK.name,
            {"generation_id": plan.generation_id, "chunk_index": index},
            _job_id=chunk_job_id(plan.generation_id, index, payload.key),
        )


def _generation_defaults(settings: Settings, job_id: str) -> dict[str, Any]:
    # Without a key of its own, the job id names the generation: a re-delivery is the same one.
    return {"key": job_id, "chunk_size": settings.generation_chunk_size}


GENERATE_PROFILES = Job(
    "generate_profiles",
    schemas.GenerateProfiles,
    services.start_generation,
    defaults=_generation_defaults,
    fan_out=enqueue_chunks,
    option_names={"key": "--job-id"},
)
GENERATE_CHUNK = Job(
    "generate_profiles_chunk",
    schemas.GenerateChunk,
    services.generate_chunk,
    timeout=120,
    producers_enqueue_it=False,
)
CREATE_PROFILE = Job("create_profile", schemas.CreateProfile, services.create_profile)
UPDATE_PROFILE = Job(
    "update_profile",
    schemas.UpdateProfile,
    services.update_profile,
    arguments=("profile_id",),
)
CREATE_EXPERIMENT = Job(
    "create_experiment",
    schemas.CreateExperiment,
    services.create_experiment,
    option_names={"owner_id": "--owner"},
)
START_RUN = Job("start_run", schemas.StartRun, services.start_run, arguments=("experiment_id",))
FINISH_RUN = Job("finish_run", schemas.FinishRun, services.finish_run, arguments=("run_id",))
RECORD_METRIC = Job(
    "record_metric",
    schemas.RecordMetric,
    services.record_metric,
    arguments=("run_id", "name", "step", "value"),
)
RECORD_METRICS = Job(
    "record_metrics", schemas.RecordMetrics, services.record_metrics, arguments=("run_id",)
)
FAIL_STALE_RUNS = Job(
    "fail_stale_runs",
    schemas.FailStaleRuns,
    services.fail_stale_runs,
    defaults=lambda settings, _: {"idle_seconds": settings.stale_run_seconds},
    cron=Cron(second=0),
)
PRUNE_JOB_HISTORY = Job(
    "prune_job_history",
    schemas.PruneJobHistory,
    services.prune_job_history,
    timeout=300,
    defaults=lambda settings, _: {"keep_days": settings.job_history_days},
    cron=Cron(minute=7, second=0),
)

JOBS: dict[str, Job[Any]] = {
    job.name: job
    for job in (
        GENERATE_PROFILES,
        GENERATE_CHUNK,
        CREATE_PROFILE,
        UPDATE_PROFILE,
        CREATE_EXPERIMENT,
        START_RUN,
        FINISH_RUN,
        RECORD_METRIC,
        RECORD_METRICS,
        FAIL_STALE_RUNS,
        PRUNE_JOB_HISTORY,
    )
}
