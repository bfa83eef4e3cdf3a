"""The job registry: every job declared once, and everything else derived from it.

arq's functions and cron jobs (``worker.main``), the CLI's ``jobs enqueue`` commands and
``jobs retry`` read ``JOBS``. A job takes one JSON object, as its sole argument or as
keyword arguments, e.g. ``await redis.enqueue_job("record_metric", {"run_id": 1, "name":
"loss", "step": 3, "value": 0.25})``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from domain import schemas

if TYPE_CHECKING:
    from domain.services import UseCase
    from domain.views import GenerationPlan
    from worker.settings import Settings

P = TypeVar("P", bound=schemas.Payload)


@dataclass(frozen=True)
class FollowUps:
    """The jobs a job enqueues once its use case has committed: ``function`` for each of
    ``payloads``, under fixed ``job_ids``, each a child of the job in the history."""

    function: str
    payloads: Sequence[dict[str, Any]]
    job_ids: Sequence[str]


FanOut = Callable[[Any, Any], FollowUps]  # (payload, result) -> the jobs that follow


@dataclass(frozen=True)
class Cron:
    """When every worker schedules the job (arq's ``cron`` fields); one tick commits once."""

    second: int = 0
    minute: int | None = None


@dataclass(frozen=True)
class Job(Generic[P]):
    """One job: its name on the queue, its payload (a command of the domain, carried out by
    the use case ``domain.services.HANDLERS`` names for it), and how it is run.

    Only ``domain.schemas`` is imported here: producers (the CLI) read the registry without
    loading SQLAlchemy, which would cost them 0.4 s a call.
    """

    name: str
    schema: type[P]
    timeout: int = 60  # seconds; keep it honest: arq holds a dead worker's job this long + 10 s
    max_tries: int | None = None  # None: JOBS_MAX_TRIES
    # Payload fields the worker fills in from its settings when not given: field -> setting.
    defaults: Mapping[str, str] = field(default_factory=dict)
    # The follow-up jobs, enqueued after the use case commits, on every delivery until the
    # job's success is recorded: a re-delivery after a crash enqueues whatever is missing.
    fan_out: FanOut | None = None
    cron: Cron | None = None
    producers_enqueue_it: bool = True  # False: only other jobs do (generation chunks)
    # On the command line: the fields given as positional arguments, in order (the rest are
    # options named after their field), and options with a name of their own.
    arguments: tuple[str, ...] = ()
    option_names: Mapping[str, str] = field(default_factory=dict)
    # The field the job id fills in when a producer leaves it out (a generation's key): the
    # same job id always names the same thing, so a re-delivery or a retry makes no other.
    job_id_field: str | None = None
    use_case: UseCase[P] | None = None  # None: the schema's handler in the domain

    @property
    def command(self) -> str:
        """Its name on the command line: ``jobs enqueue record-metric``."""
        return self.name.replace("_", "-")

    def label(self, field_name: str) -> str:
        """What a user typed for a payload field: ``RUN_ID``, ``--owner``, ``--full-name``."""
        if field_name in self.arguments:
            return field_name.upper()
        if field_name == self.job_id_field:
            return "--job-id"
        return self.option_names.get(field_name, "--" + field_name.replace("_", "-"))

    @property
    def cron_name(self) -> str:
        return f"cron:{self.name}"

    @property
    def summary(self) -> str:
        return (self.schema.__doc__ or self.name).strip().splitlines()[0]

    def complete(self, raw: Any, settings: Settings, job_id: str) -> Any:
        """The payload with the worker's defaults for the fields not given."""
        if not isinstance(raw, Mapping):
            return raw
        named = {self.job_id_field: job_id} if self.job_id_field else {}
        defaults = {name: getattr(settings, setting) for name, setting in self.defaults.items()}
        return {**named, **defaults, **raw}


def chunk_job_id(generation_id: int, chunk_index: int, key: str) -> str:
    """Fixed per chunk; the key keeps it unique even when a reset database reuses ids
    while Redis still remembers the old generation's chunk jobs."""
    return f"generation:{generation_id}:chunk:{chunk_index}:{key}"


def generation_of(job_id: str) -> int | None:
    """The generation a chunk job's id names; None for any other job."""
    parts = job_id.split(":", 4)
    if len(parts) == 5 and parts[0] == "generation" and parts[2] == "chunk":
        return int(parts[1]) if parts[1].isdigit() and len(parts[1]) < 19 else None
    return None


def generation_chunks(payload: schemas.GenerateProfiles, plan: GenerationPlan) -> FollowUps:
    """A generation's chunk jobs, each under the fixed id of its chunk."""
    indexes = range(plan.chunks)
    return FollowUps(
        GENERATE_CHUNK.name,
        [{"generation_id": plan.generation_id, "chunk_index": index} for index in indexes],
        [chunk_job_id(plan.generation_id, index, payload.key) for index in indexes],
    )


GENERATE_PROFILES = Job(
    "generate_profiles",
    schemas.GenerateProfiles,
    defaults={"chunk_size": "generation_chunk_size"},
    fan_out=generation_chunks,
    job_id_field="key",
)
GENERATE_CHUNK = Job(
    "generate_profiles_chunk",
    schemas.GenerateChunk,
    timeout=120,
    producers_enqueue_it=False,
)
CREATE_PROFILE = Job("create_profile", schemas.CreateProfile)
UPDATE_PROFILE = Job(
    "update_profile",
    schemas.UpdateProfile,
    arguments=("profile_id",),
)
CREATE_EXPERIMENT = Job(
    "create_experiment",
    schemas.CreateExperiment,
    option_names={"owner_id": "--owner"},
)
START_RUN = Job("start_run", schemas.StartRun, arguments=("experiment_id",))
FINISH_RUN = Job("finish_run", schemas.FinishRun, arguments=("run_id",))
# Both metric jobs refuse points for a run that ended longer ago than the setting allows.
LATE_METRICS = {"late_seconds": "late_metrics_seconds"}
RECORD_METRIC = Job(
    "record_metric",
    schemas.RecordMetric,
    arguments=("run_id", "name", "step", "value"),
    defaults=LATE_METRICS,
)
RECORD_METRICS = Job(
    "record_metrics", schemas.RecordMetrics, arguments=("run_id",), defaults=LATE_METRICS
)
FAIL_STALE_RUNS = Job(
    "fail_stale_runs",
    schemas.FailStaleRuns,
    defaults={"idle_seconds": "stale_run_seconds"},
    cron=Cron(second=0),
)
PRUNE_JOB_HISTORY = Job(
    "prune_job_history",
    schemas.PruneJobHistory,
    timeout=300,
    defaults={"keep_days": "job_history_days"},
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


def jobs_table() -> str:
    """The README's table of jobs, derived from the registry (a test keeps them equal)."""
    lines = [
        "| job | payload | timeout | schedule |",
        "| --- | --- | --- | --- |",
    ]
    for job in JOBS.values():
        fields = ", ".join(
            f"`{name}`" if field.is_required() and name not in job.defaults else f"[`{name}`]"
            for name, field in job.schema.model_fields.items()
        )
        schedule = _schedule(job.cron) if job.cron else ""
        lines.append(f"| `{job.name}` | {fields} | {job.timeout} s | {schedule} |")
    return "\n".join(lines)


def _schedule(cron: Cron) -> str:
    if cron.minute is None:
        return f"every minute at :{cron.second:02d}"
    return f"every hour at :{cron.minute:02d}:{cron.second:02d}"
