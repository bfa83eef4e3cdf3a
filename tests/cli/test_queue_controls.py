"""``jobs pause``, ``resume``, ``limit`` and ``lanes``: what they leave in Redis and print."""

from __future__ import annotations

from tests.cli.conftest import QUEUE, one_json
from worker.lanes import limits_key, paused_key


async def test_pause_and_resume_a_lane_and_a_kind(cli, queue):
    assert (await cli("pause", "bulk")).exit_code == 0
    paused = await cli("pause", "generate-profiles", "--json")
    again = await cli("pause", "bulk")
    members = queue.client.smembers(paused_key(QUEUE))
    resumed = await cli("resume", "bulk")

    assert members == {b"lane:bulk", b"job:generate_profiles"}
    assert one_json(paused) == {"target": "generate-profiles", "state": "paused", "changed": True}
    assert "paused already" in again.stdout
    assert resumed.exit_code == 0
    assert queue.client.smembers(paused_key(QUEUE)) == {b"job:generate_profiles"}


async def test_an_unknown_target_is_refused_naming_the_choices(cli, queue):
    result = await cli("pause", "everything")

    assert result.exit_code == 1
    assert "neither a lane nor a job" in result.stderr
    assert "generate-profiles" in result.stderr
    assert queue.client.exists(paused_key(QUEUE)) == 0


async def test_a_cap_is_set_shown_and_cleared(cli, queue):
    set_now = one_json(await cli("limit", "generate-profiles-chunk", "7", "--json"))
    stored = queue.client.hgetall(limits_key(QUEUE))
    shown = one_json(await cli("lanes", "--json"))
    cleared = await cli("limit", "generate-profiles-chunk", "--clear")
    neither = await cli("limit", "generate-profiles-chunk")

    assert set_now == {"job": "generate-profiles-chunk", "limit": 7}
    assert stored == {b"generate_profiles_chunk": b"7"}
    assert shown["limits"] == {"generate_profiles_chunk": 7, "record_metrics": 4}
    assert [lane["lane"] for lane in shown["lanes"]] == ["interactive", "maintenance", "bulk"]
    assert "at most 4 at once" in cleared.stdout  # the registry's
    assert neither.exit_code == 2
    assert queue.client.exists(limits_key(QUEUE)) == 0
