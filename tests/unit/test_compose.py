"""docker-compose.yml cannot run here (no Docker engine): check it by reading it."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from worker.settings import Settings
from worker.testing.processes import ROOT

COMPOSE = yaml.safe_load(Path(ROOT, "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("migrate", "worker", "console")


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service]["environment"].items()}


def _settings_env_names() -> set[str]:
    names = {"DATABASE_URL", "REDIS_URL"}
    prefix = Settings.model_config.get("env_prefix", "")
    names |= {
        f"{prefix}{name}".upper()
        for name, field in Settings.model_fields.items()
        if field.validation_alias is None
    }
    return names


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_variables_are_settings(service):
    ours = {k for k in _env(service) if not k.startswith("UV_")}
    unknown = ours - _settings_env_names()
    assert not unknown, f"{service} sets variables no setting reads: {sorted(unknown)}"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_variables_parse_as_settings(service, monkeypatch):
    for key, value in _env(service).items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.database_url.get_secret_value().startswith("postgresql+asyncpg://")
    assert settings.shutdown_grace == int(_env(service)["JOBS_SHUTDOWN_GRACE"])


def test_database_url_matches_the_postgres_service():
    url = urlsplit(_env("worker")["DATABASE_URL"])
    postgres = SERVICES["postgres"]["environment"]
    assert url.hostname == "postgres"
    assert (url.username, url.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert url.path.lstrip("/") == postgres["POSTGRES_DB"]


def test_redis_url_points_at_the_redis_service_which_keeps_an_aof():
    assert urlsplit(_env("worker")["REDIS_URL"]).hostname == "redis"
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_redis_refuses_values_far_over_the_workers_payload_limit():
    command = SERVICES["redis"]["command"]
    bulk_limit = command[command.index("--proto-max-bulk-len") + 1]
    assert bulk_limit.endswith("mb")
    limit_mb = int(bulk_limit.removesuffix("mb"))
    assert 1 < limit_mb * 1024 * 1024 / Settings().max_payload_bytes <= 8


def test_worker_is_scalable_restarted_and_waits_for_migrations():
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["restart"] in {"always", "unless-stopped", "on-failure"}
    assert "worker.main.WorkerSettings" in worker["command"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "alembic upgrade head" in " ".join(SERVICES["migrate"]["command"])


def test_stop_grace_outlasts_the_shutdown_grace():
    grace = int(_env("worker")["JOBS_SHUTDOWN_GRACE"])
    stop_grace = int(str(SERVICES["worker"]["stop_grace_period"]).rstrip("s"))
    assert stop_grace > grace


@pytest.mark.parametrize("service", ["postgres", "redis", "worker"])
def test_long_running_services_have_healthchecks(service):
    assert SERVICES[service]["healthcheck"]["test"]


def _readme_block_with(command: str) -> str:
    blocks = re.findall(r"```bash\n(.*?)```", Path(ROOT, "README.md").read_text(), re.DOTALL)
    [block] = [block for block in blocks if command in block.splitlines()]
    return block


def _published(service: str) -> tuple[str, int]:
    """The host address and port a service publishes (``127.0.0.1:5432:5432``)."""
    [mapping] = SERVICES[service]["ports"]
    host, port, _ = mapping.split(":")
    return host, int(port)


def test_the_readmes_docker_quick_start_reaches_the_compose_services():
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in _readme_block_with("docker compose up -d postgres redis").splitlines()
        if line.startswith("export ")
    )
    database, redis = urlsplit(exports["DATABASE_URL"]), urlsplit(exports["REDIS_URL"])
    postgres = SERVICES["postgres"]["environment"]
    assert (database.username, database.password, database.path.lstrip("/")) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    assert (database.hostname, database.port) == _published("postgres")
    assert (redis.hostname, redis.port) == _published("redis")


def test_each_worker_replica_checks_its_own_readiness_on_its_own_exporter():
    worker = SERVICES["worker"]
    env = _env("worker")
    port = int(env["JOBS_METRICS_PORT"])
    assert env["JOBS_METRICS_HOST"] == "0.0.0.0"  # reachable by Prometheus in the network
    assert [int(p) for p in worker["expose"]] == [port]  # scraped inside it, not published
    test = worker["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert test[-3:] == ["dbjobs", "health", "--local"]  # not arq --check: one key per queue
    assert env["DATABASE_URL"] == _env("migrate")["DATABASE_URL"]  # the anchor still applies


def test_the_console_is_published_on_the_hosts_loopback_only():
    console = SERVICES["console"]
    assert console["ports"] == ["127.0.0.1:8000:8000"]
    assert "0.0.0.0" in console["command"]  # inside the container, to reach the port
    # which `dbjobs serve` refuses without a token unless told: the port is on loopback only
    assert "--insecure-no-token" in console["command"]
    unset = Settings(_env_file=None, console_token=" ")  # type: ignore[call-arg]
    assert unset.console_token is None  # compose passes ${JOBS_CONSOLE_TOKEN:-} as ""
