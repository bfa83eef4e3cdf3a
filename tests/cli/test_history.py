"""Job state from Redis or the durable history; ``dbjobs failed`` and ``dbjobs retry``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.db import utcnow
from domain.repositories import JobStamp
from tests.cli.conftest import one_json

FINISH_999 = {"run_id": 999, "status": "completed"}


@pytest.fixture
def history(uow_factory):
    """Writes job outcomes as a worker would."""

    async def record(job_id, function="finish_run", *, failed=True, payload=FINISH_999, ago=0):
        stamp = JobStamp(job_id, function, 2, utcnow() - timedelta(seconds=ago))
        async with uow_factory() as uow:
            if failed:
                await uow.jobs.record_failure(
                    stamp, error_type="RunNotFound", message="run 999 not found", payload=payload
                )
            else:
                await uow.jobs.record_success(stamp)
            await uow.commit()

    return record


async def test_failed_lists_failures_newest_first(cli, history):
    await history("old", ago=60)
    await history("new")
    await history("fine", failed=False)
    data = one_json(await cli("failed", "--json"))
    assert [(f["job_id"], f["error_type"], f["tries"]) for f in data["failed"]] == [
        ("new", "RunNotFound", 2),
        ("old", "RunNotFound", 2),
    ]
    assert data["failed"][0]["error_message"] == "run 999 not found"
    assert len(one_json(await cli("failed", "--limit", "1", "--json"))["failed"]) == 1
    table = await cli("failed")
    assert "RunNotFound" in table.stdout
    assert "new" in table.stdout


async def test_status_and_result_fall_back_to_the_history(cli, history):
    await history("gone")
    status = one_json(await cli("status", "gone", "--json"))
    assert status["state"] == "failed"
    assert status["source"] == "history"
    assert status["error"] == {"type": "RunNotFound", "message": "run 999 not found"}
    result = await cli("result", "gone", "--json")
    assert result.exit_code == 1
    assert one_json(result)["error"]["type"] == "RunNotFound"
    human = await cli("result", "gone")
    assert "RunNotFound: run 999 not found" in human.stderr


async def test_an_unknown_job_is_a_clear_refusal(cli):
    for command in ("status", "result"):
        result = await cli(command, "nobody-knows")
        assert result.exit_code == 1
        assert "job nobody-knows is unknown" in result.stderr


async def test_status_of_a_queued_job(cli):
    await cli("enqueue", "start-run", "3", "--job-id", "waiting")
    data = one_json(await cli("status", "waiting", "--json"))
    assert (data["state"], data["function"], data["source"]) == ("queued", "start_run", "redis")
    result = await cli("result", "waiting")
    assert result.exit_code == 1
    assert "no result yet: it is queued" in result.stderr


async def test_retry_enqueues_the_recorded_payload_once(cli, queue, history):
    await history("doomed")
    first = one_json(await cli("retry", "doomed", "--json"))
    second = one_json(await cli("retry", "doomed", "--json"))
    assert (first["job_id"], first["state"], first["deduplicated"]) == (
        "doomed:retry:1",
        "queued",
        False,
    )
    assert (second["job_id"], second["deduplicated"]) == ("doomed:retry:1", True)
    assert queue.job_ids() == ["doomed:retry:1"]
    assert queue.payload("doomed:retry:1") == FINISH_999


async def test_retry_moves_on_after_a_failed_attempt_and_stops_after_a_success(cli, queue, history):
    await history("doomed")
    await history("doomed:retry:1")
    assert one_json(await cli("retry", "doomed", "--json"))["job_id"] == "doomed:retry:2"
    await history("doomed:retry:2", failed=False)
    result = await cli("retry", "doomed")
    assert result.exit_code == 1
    assert "already retried: doomed:retry:2 succeeded" in result.stderr
    assert queue.job_ids() == ["doomed:retry:2"]


async def test_retry_refuses_what_it_cannot_retry(cli, queue, history):
    await history("fine", failed=False)
    await history("huge", payload=None)
    await history("broken", payload={"run_id": "x"})
    for job_id, problem in (
        ("unknown", "not in the job history"),
        ("fine", "succeeded: there is nothing to retry"),
        ("huge", "has no recorded payload"),
        ("broken", "run_id: Input should be a valid integer"),
    ):
        result = await cli("retry", job_id)
        assert result.exit_code == 1, job_id
        assert problem in result.stderr
    assert queue.job_ids() == []


async def test_a_generation_is_retried_as_the_same_generation(cli, queue, history):
    await history("gen", "generate_profiles", payload={"count": 10})
    assert one_json(await cli("retry", "gen", "--json"))["job_id"] == "gen:retry:1"
    assert queue.payload("gen:retry:1") == {"count": 10, "key": "gen"}
