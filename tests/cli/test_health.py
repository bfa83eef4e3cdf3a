"""``jobs health`` on the suite's Redis: the workers' heartbeats as an operator reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis

from tests.cli.conftest import QUEUE, one_json
from worker.runtime.heartbeats import STOPPING, Heartbeat, worker_key


@pytest.fixture
async def beating(redis: ArqRedis) -> AsyncIterator[list[Heartbeat]]:
    beats = [Heartbeat(redis, QUEUE, f"host:{pid}", 30, running=lambda: 2) for pid in (1, 2)]
    for beat in beats:
        await beat.start()
    yield beats
    for beat in beats:
        await beat.stop()


async def test_every_ready_worker_is_listed_and_the_exit_code_is_0(cli, beating):
    result = await cli("health", "--json")

    assert result.exit_code == 0, result.output
    data = one_json(result)
    assert data["ready"] is True
    assert [(w["worker_id"], w["state"], w["running"]) for w in data["workers"]] == [
        ("host:1", "ready", 2),
        ("host:2", "ready", 2),
    ]


async def test_a_stopping_and_a_silent_worker_fail_the_check_but_not_the_others(
    cli, beating, redis
):
    beating[0].state = STOPPING
    await beating[0].beat()
    await beating[1].beat()
    await redis.delete(worker_key(QUEUE, "host:2"))  # as if it had gone silent

    listed = await cli("health")
    one = await cli("health", "--worker", "host:1", "--json")

    assert listed.exit_code == 1
    assert "stopping" in listed.stdout
    assert "silent" in listed.stdout
    assert one.exit_code == 1
    assert [w["state"] for w in one_json(one)["workers"]] == ["stopping"]


async def test_a_ready_worker_named_passes_while_another_is_stopping(cli, beating):
    beating[0].state = STOPPING
    await beating[0].beat()

    result = await cli("health", "--worker", "host:2")

    assert result.exit_code == 0, result.output


async def test_an_unknown_worker_or_none_at_all_fails(cli, redis):
    nobody = await cli("health")
    unknown = await cli("health", "--worker", "elsewhere:9")

    assert (nobody.exit_code, nobody.stdout.strip()) == (1, "no worker is running")
    assert unknown.exit_code == 1
    assert "no worker 'elsewhere:9'" in unknown.stderr


async def test_local_needs_the_metrics_port(cli):
    result = await cli("health", "--local")

    assert result.exit_code == 2
    assert "set JOBS_METRICS_PORT" in result.stderr
