"""Settings from the environment and ``.env``; built when asked for, never at import."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.schemas import DEFAULT_LATE_METRICS_SECONDS, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/dbjobs"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_HOST_LABEL = re.compile(r"[a-z0-9_-]{1,63}")

_DRIVERS = {
    "postgresql://": "postgresql+asyncpg://",
    "postgres://": "postgresql+asyncpg://",
    "sqlite://": "sqlite+aiosqlite://",
}


def with_async_driver(url: str) -> str:
    """Accept the plain URLs people paste (``postgresql://``) and use the async driver."""
    for plain, driver in _DRIVERS.items():
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


class Settings(BaseSettings):
    """``DATABASE_URL`` and ``REDIS_URL`` as everyone names them; the rest as ``JOBS_<NAME>``."""

    model_config = SettingsConfigDict(
        env_file=".env", env_prefix="JOBS_", extra="ignore", populate_by_name=True
    )

    database_url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL), validation_alias="DATABASE_URL"
    )
    redis_url: SecretStr = Field(default=SecretStr(DEFAULT_REDIS_URL), validation_alias="REDIS_URL")
    queue_name: str = "dbjobs:queue"

    # Redis TLS (use a rediss:// URL, or give a CA bundle) and connection patience.
    redis_ssl_ca_certs: str | None = None
    redis_ssl_certfile: str | None = None
    redis_ssl_keyfile: str | None = None
    redis_ssl_cert_reqs: Literal["required", "optional", "none"] = "required"
    redis_connect_timeout: Annotated[int, Field(ge=1)] = 2
    redis_connect_retries: Annotated[int, Field(ge=0)] = 5
    # How long a Redis reply may take. Without a bound, a Redis that hangs (stopped, or
    # behind a network that drops packets) blocks a worker forever instead of ending it.
    redis_socket_timeout: Annotated[float, Field(gt=0)] = 5
    # Replicas that must hold a job before enqueueing it succeeds (Redis WAIT), and how long
    # to wait for them. 0: Redis's asynchronous replication, whose failover can lose the
    # jobs of the last moment (README, "Redis with Sentinel").
    enqueue_replicas: Annotated[int, Field(ge=0, le=16)] = 0
    enqueue_replica_timeout: Annotated[float, Field(gt=0, le=60)] = 1

    # Worker tuning (measured in bench/; arq's defaults are 10 jobs and a 0.5 s poll).
    max_jobs: Annotated[int, Field(ge=1, le=1000)] = 50
    # Connections per worker process. Jobs beyond it wait briefly for one; keep
    # workers x db_pool_size under PostgreSQL's max_connections (100 by default).
    db_pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    # Test each pooled connection before a job uses it. Off: it costs three round trips per
    # job (BEGIN; ping; ROLLBACK) for nothing while the database is up, and a connection
    # lost meanwhile fails only that job's try, as a transient error that is retried (the
    # pool then drops every connection older than the failure).
    db_pre_ping: bool = False
    poll_delay: Annotated[float, Field(gt=0, le=5)] = 0.01
    # An idle worker blocks on the doorbell (worker.runtime.polling) this long at most, less
    # when a deferred job or a cron tick is due sooner: only a job enqueued by a client that
    # does not ring waits that long. 0: no doorbell, it polls every poll_delay as arq does.
    idle_wait_seconds: Annotated[float, Field(ge=0, le=60)] = 30.0
    # arq's two lines per job (start, success), off by default: at a thousand jobs a second
    # they cost a quarter of the worker's CPU (0.24 ms a job). Failures, retries and slow
    # jobs keep a line each, and a summary line comes every log_summary_seconds (0: none).
    log_each_job: bool = False
    log_summary_seconds: Annotated[float, Field(ge=0)] = 60
    log_slow_seconds: Annotated[float, Field(gt=0)] = 10
    # `dbjobs cancel` of a running job (arq's abort): a worker running jobs reads the abort
    # requests every 0.25 s (one Redis round trip). False: running jobs are never aborted.
    abort_running_jobs: bool = True
    job_timeout: Annotated[int, Field(ge=1)] = 300
    max_tries: Annotated[int, Field(ge=1, le=100)] = 8
    keep_result: Annotated[int, Field(ge=0)] = 3600
    # In-progress leases are renewed while a job runs; a dead worker's jobs are
    # picked up by another worker once its lease lapses.
    lease_seconds: Annotated[float, Field(ge=2, le=600)] = 8
    shutdown_grace: Annotated[int, Field(ge=0)] = 30
    # Each worker's own heartbeat (worker.runtime.heartbeats): it counts as gone after 3 missed.
    heartbeat_seconds: Annotated[float, Field(ge=0.1, le=60)] = 5
    # Each worker's own /metrics, /healthz and /readyz (worker.runtime.exporter); 0 or unset: off.
    # 127.0.0.1 unless told otherwise: the compose stack listens on 0.0.0.0 for Prometheus.
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    metrics_host: str = "127.0.0.1"
    retry_base_delay: Annotated[float, Field(gt=0)] = 0.5
    retry_max_delay: Annotated[float, Field(gt=0)] = 60
    # How long a job whose payload is newer than a worker knows may wait for a worker that
    # knows it (a rolling deploy: worker.runtime.payload_versions) before it fails.
    payload_version_grace: Annotated[float, Field(ge=1, le=7 * 24 * 3600)] = 900
    # The longest wait before such a job is offered again (from 0.5 s, doubling).
    payload_version_wait: Annotated[float, Field(ge=0.5, le=600)] = 30

    # The largest job a worker parses (its serialized bytes). A larger one is refused
    # unparsed and recorded as failed: a 50,000-point metrics batch is about 4.5 MB.
    max_payload_bytes: Annotated[int, Field(ge=64 * 1024, le=512 * 1024 * 1024)] = 8 * 1024 * 1024

    # Producers are held to the same bounds (domain.schemas.GenerateProfiles).
    generation_chunk_size: Annotated[int, Field(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)] = 10_000

    # The operations console (`dbjobs serve`). Loopback unless told otherwise: its API can
    # enqueue jobs. With a token set, every change of state needs it.
    console_host: str = "127.0.0.1"
    console_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    console_token: SecretStr | None = None
    # The names the console answers to (a request's Host, whatever its port): a page of
    # another site whose name is re-pointed at this address (DNS rebinding) is refused.
    # Comma-separated; "*" answers to any name (behind a proxy that checks Host itself).
    console_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = LOOPBACK_NAMES
    # The largest request body the console reads (413 beyond, before a byte of it is read);
    # unset: JOBS_MAX_PAYLOAD_BYTES, the largest job a worker takes.
    console_max_body_bytes: Annotated[int, Field(ge=1024, le=512 * 1024 * 1024)] | None = None
    # How long a dashboard login lasts; logging out ends it at once.
    console_session_seconds: Annotated[int, Field(ge=60, le=30 * 86400)] = 8 * 3600
    # Slow clients: a request's head (line and headers) must arrive within the first, its
    # body within the second; a connection that does not is closed (the body: 408).
    console_header_timeout: Annotated[float, Field(gt=0, le=300)] = 10
    console_body_timeout: Annotated[float, Field(gt=0, le=3600)] = 60
    # Every read of the console is bounded in time as well as size: PostgreSQL cancels a
    # statement after this many seconds, and the console answers 503 (Retry-After).
    console_statement_timeout: Annotated[float, Field(ge=0.01, le=3600)] = 5
    # Reads that grow with the metric data, served at once (worker.web.budget); the pool
    # has 5 connections more for every other request.
    console_heavy_reads: Annotated[int, Field(ge=1, le=50)] = 2
    # How long a request waits for a heavy-read slot or a database connection before the
    # console answers 503 with Retry-After.
    console_wait_seconds: Annotated[float, Field(gt=0, le=60)] = 2

    stale_run_seconds: Annotated[int, Field(ge=1)] = 3600
    # Points for a run that ended are refused, except this long after its end (late buffers).
    late_metrics_seconds: Annotated[int, Field(ge=0)] = DEFAULT_LATE_METRICS_SECONDS
    job_history_days: Annotated[int, Field(ge=1)] = 14

    @field_validator("console_token", mode="before")
    @classmethod
    def _no_empty_token(cls, value: object) -> object:
        """An empty JOBS_CONSOLE_TOKEN (compose passes one when unset) means no token."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("console_allowed_hosts", mode="before")
    @classmethod
    def _host_names(cls, value: object) -> object:
        """``a.example, 10.0.0.5,[::1]``: names and addresses, lowercased, without ports;
        none given (compose passes an unset variable as ""): the loopback names."""
        given = value.split(",") if isinstance(value, str) else value
        if not isinstance(given, list | tuple):
            return value
        names = tuple(_host_name(str(name)) for name in given if str(name).strip())
        return names or LOOPBACK_NAMES

    @property
    def console_body_limit(self) -> int:
        return self.console_max_body_bytes or self.max_payload_bytes

    @field_validator("database_url", mode="after")
    @classmethod
    def _async_driver(cls, value: SecretStr) -> SecretStr:
        return SecretStr(with_async_driver(value.get_secret_value()))


def _host_name(given: str) -> str:
    """A host name or address as a Host header carries it, to compare with one: lowercase,
    IPv6 without its brackets and compressed. No port, scheme or path."""
    name = given.strip().lower()
    bare = name.removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if name == "*" or all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        return name
    raise ValueError(f"{given.strip()!r} is not a host name or address (no port, no scheme)")
