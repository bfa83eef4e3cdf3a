"""``dbjobs health`` on the suite's Redis: the workers' heartbeats as an operator reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis

from tests.cli.conftest import QUEUE, one_json
from worker.ops.workers import STOPPING, index_key, worker_key
from worker.quarantine import BAD_ID
from worker.runtime.heartbeats import Heartbeat
from worker.runtime.quarantining import quarantine_entry


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
    assert "lost" in listed.stdout
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


async def test_junk_in_the_roster_is_skipped_and_counted_and_the_quarantine_is_shown(
    cli, beating, redis
):
    await redis.zadd(index_key(QUEUE), {b"\xff-junk": 1, "future:1": 2**62, "junk:1": 1})
    await redis.set(worker_key(QUEUE, "junk:1"), "not a beat")
    await redis.zadd(QUEUE, {b"\xff\x1b[2J-poison": 1})
    assert await quarantine_entry(redis, QUEUE, b"\xff\x1b[2J-poison", BAD_ID, "why", "w:1")

    health = await cli("health", "--json")

    assert health.exit_code == 1, health.output  # the far-future entry reads as silent
    data = one_json(health)
    assert [w["worker_id"] for w in data["workers"] if w["state"] == "ready"] == [
        "host:1",
        "host:2",
    ]
    assert (data["unreadable"], data["quarantined"]) == (2, 1)
    # A worker's first beat (and every PRUNE_EVERY_BEATS-th) forgets entries from the future.
    await Heartbeat(redis, QUEUE, "host:2", 30, running=lambda: 2).beat()
    assert one_json(await cli("health", "--json"))["workers"][-1]["worker_id"] == "host:2"
    assert "1 queue entry is in quarantine" in (await cli("health")).stderr


async def test_jobs_quarantine_lists_the_records_literally_and_clears_them(cli, redis):
    for n in range(3):
        entry = b"\xff\x1b[2J-poison-%d" % n
        await redis.zadd(QUEUE, {entry: n})
        assert await quarantine_entry(redis, QUEUE, entry, BAD_ID, "not UTF-8", "w:1")

    listed = await cli("quarantine", "--limit", "2")
    as_json = one_json(await cli("quarantine", "--json"))
    cleared = one_json(await cli("quarantine", "--clear", "--json"))

    assert listed.exit_code == 0, listed.output
    assert "\\xff\\u001b[2J-poison-2" in listed.stdout  # escaped, never acted on
    assert "\x1b" not in listed.stdout
    assert "poison-0" not in listed.stdout  # --limit 2: the newest two
    assert as_json["total"] == 3
    assert [e["entry_hex"] for e in as_json["entries"]] == [
        (b"\xff\x1b[2J-poison-%d" % n).hex() for n in (2, 1, 0)
    ]
    assert cleared["cleared"] == 3
    assert (await cli("quarantine")).stdout.strip() == "the quarantine is empty"
