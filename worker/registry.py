"""The job registry: every job declared once, and everything else derived from it.

arq's functions and cron jobs (``worker.main``), the CLI's ``dbjobs enqueue`` commands and
``dbjobs retry`` read ``JOBS``. A job takes one JSON object, as its sole argument or as
keyword arguments, e.g. ``await redis.enqueue_job("record_metric", {"run_id": 1, "name":
"loss", "step": 3, "value": 0.25})``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from domain import schemas
from worker.lanes import DEFAULT_LANE, Lane

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
# A payload of one version as the next version reads it (a field renamed, one added...).
Upgrader = Callable[[dict[str, Any]], dict[str, Any]]


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
    timeout: int = 60  # seconds: a try past it is cancelled and retried (runtime/endings.py)
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
    lane: Lane = DEFAULT_LANE  # the queue it waits in (worker.lanes); a producer may override
    # At most this many run at once across all workers (None: no cap); `limit` changes it
    # at run time. Bulk kinds are capped so that a backlog cannot take every connection.
    limit: int | None = None
    # The version of the payload's schema on the queue, declared here rather than on the
    # schema: it is the job's contract between producers and workers of different deploys,
    # like its name; the domain's schema is the command as the use case takes it, and knows
    # nothing of deploys. Bump it whenever the schema changes (README, "Rolling deploys").
    version: int = 1
    # The oldest version a worker still runs (a producer that sends none sends version 1),
    # and per version N whose payload version N + 1 cannot read as it is, the upgrader
    # from N to N + 1. A payload newer than ``version`` is left for a worker that knows it.
    accepts_from: int = 1
    upgraders: Mapping[int, Upgrader] = field(default_factory=dict)

    def __post_init__(self) -> None:
        upgraded = set(range(self.accepts_from, self.version))
        if not 1 <= self.accepts_from <= self.version or not set(self.upgraders) <= upgraded:
            raise ValueError(
                f"job {self.name}: accepts versions {self.accepts_from} to {self.version}, "
                f"has upgraders from {sorted(self.upgraders)}"
            )

    @property
    def command(self) -> str:
        """Its name on the command line: ``dbjobs enqueue record-metric``."""
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

    def upgraded(self, payload: dict[str, Any], version: int) -> dict[str, Any]:
        """A payload of ``version`` (``accepts_from`` to ``self.version``) at this version."""
        for older in range(version, self.version):
            upgrade = self.upgraders.get(older)
            payload = upgrade(payload) if upgrade else payload
        return payload

    def complete(self, raw: Any, settings: Settings, job_id: str) -> Any:
        """The payload with the worker's defaults for the fields not given."""
        if not isinstance(raw, Mapping):
            return raw
        named = {self.job_id_field: job_id} if self.job_id_field else {}
        defaults = {name: getattr(settings, setting) for name, setting in self.defaults.items()}
        return {**named, **defaults, **raw}


def lane_of(function: str) -> Lane:
    """The lane a job of ``function`` goes to unless its producer names another."""
    job = JOBS.get(function) or CRON_JOBS.get(function)
    return job.lane if job is not None else DEFAULT_LANE


def default_limits() -> dict[str, int]:
    """The registry's caps on running jobs, by job name."""
    return {job.name: job.limit for job in JOBS.values() if job.limit is not None}


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
    lane="bulk",
    # With RECORD_METRICS' cap, 8 of a worker's 10 database connections (JOBS_DB_POOL_SIZE)
    # at most: a backlog leaves room, and event-loop time, for interactive jobs. Two chunks
    # at once cost a 100,000-profile backlog 1.5x its time (bench --only lanes); four, none.
    limit=4,
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
    "record_metrics",
    schemas.RecordMetrics,
    arguments=("run_id",),
    defaults=LATE_METRICS,
    lane="bulk",
    limit=4,
)
FAIL_STALE_RUNS = Job(
    "fail_stale_runs",
    schemas.FailStaleRuns,
    defaults={"idle_seconds": "stale_run_seconds"},
    cron=Cron(second=0),
    lane="maintenance",
)
PRUNE_JOB_HISTORY = Job(
    "prune_job_history",
    schemas.PruneJobHistory,
    timeout=300,
    defaults={"keep_days": "job_history_days"},
    cron=Cron(minute=7, second=0),
    lane="maintenance",
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

# A cron tick runs under the job's cron name (arq's function name of the tick).
CRON_JOBS: dict[str, Job[Any]] = {job.cron_name: job for job in JOBS.values() if job.cron}


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
