"""An unreachable service ends a command in one line, exit code 1, and no password shown."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli, cli_env, closed_port, one_json
from worker.testing import scratch as services

PASSWORD = "hunter2-s3cret"


def one_line_refusal(result, *, containing: str) -> None:
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert containing in lines[0]
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


@pytest.fixture
def dead_redis_cli(pg_database, session_factory) -> Cli:
    port = closed_port()
    return Cli(cli_env(pg_database, f"redis://:{PASSWORD}@127.0.0.1:{port}/0"))


@pytest.fixture
def dead_database_cli(redis_space) -> Cli:
    port = closed_port()
    url = f"postgresql+asyncpg://postgres:{PASSWORD}@127.0.0.1:{port}/dbjobs"
    return Cli(cli_env(url, redis_space.url))


async def test_redis_down_while_enqueueing(dead_redis_cli):
    result = await dead_redis_cli(
        "enqueue", "start-run", "1", "--json", JOBS_REDIS_CONNECT_RETRIES="0"
    )
    one_line_refusal(result, containing="cannot reach Redis at 127.0.0.1:")
    assert one_json(result)["error"]["type"] == "failed"


async def test_redis_refusing_the_password(cli):
    url = cli.env["REDIS_URL"].replace("redis://", f"redis://:{PASSWORD}@")
    result = await cli("status", "some-job", REDIS_URL=url, JOBS_REDIS_CONNECT_RETRIES="0")
    one_line_refusal(result, containing="cannot reach Redis")


async def test_database_down_for_a_read(dead_database_cli):
    result = await dead_database_cli("profiles", "get", "1")
    one_line_refusal(result, containing="cannot connect to the database at 127.0.0.1:")


async def test_database_down_for_the_job_history(dead_database_cli, clean_redis):
    result = await dead_database_cli("status", "only-the-history-knows")
    one_line_refusal(result, containing="cannot connect to the database")


async def test_a_database_without_tables_says_to_migrate(redis_space):
    name = await services.create_database()
    try:
        result = await Cli(cli_env(services.database_url(name), redis_space.url))("failed")
    finally:
        await services.drop_database(name)
    one_line_refusal(result, containing="alembic upgrade head")


async def test_invalid_settings_are_named(cli):
    result = await cli("failed", JOBS_MAX_JOBS="lots")
    assert result.exit_code == 2
    assert "max_jobs" in result.stderr
    assert "Traceback" not in result.stderr


async def test_services_up_the_same_commands_work(cli):
    assert one_json(await cli("failed", "--json")) == {"handled": 0, "failed": []}
