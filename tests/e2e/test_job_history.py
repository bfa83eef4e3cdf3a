"""The job history as an operator meets it, with real processes: a submission followed by
its one id, results read back after Redis forgot them, cancelled jobs, one JSON object on
every error path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from domain.models import Metric, Profile
from worker.testing.processes import ROOT, run_cli
from worker.testing.scratch import RedisSpace, reset_redis_db

pytestmark = pytest.mark.e2e

POINTS = Path(ROOT) / "examples" / "points.jsonl"
POINT_LINES = len(POINTS.read_text().splitlines())


def cli(env: dict[str, str], *args: str, code: int = 0) -> dict[str, Any]:
    """Run ``jobs <args> --json``; check the exit code; the one JSON object it printed."""
    done = run_cli([*args, "--json"], env, timeout=90)
    assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    data: dict[str, Any] = json.loads(lines[0])
    return data


async def count(session_factory, model) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def a_run(env: dict[str, str]) -> int:
    profile = cli(env, "enqueue", "create-profile", "--username", "ada",
                  "--email", "ada@example.com", "--full-name", "Ada", "--wait")  # fmt: skip
    experiment = cli(env, "enqueue", "create-experiment", "--owner",
                     str(profile["result"]["id"]), "--name", "e", "--wait")  # fmt: skip
    run = cli(env, "enqueue", "start-run", str(experiment["result"]["id"]), "--wait")
    return int(run["result"]["id"])


async def test_a_submission_is_one_id_for_wait_status_and_result(env, worker, session_factory):
    run_id = a_run(env)
    lines = POINT_LINES
    waited = cli(env, "enqueue", "record-metrics", str(run_id), "--file", str(POINTS),
                 "--batch-size", "25", "--job-id", "pts", "--wait")  # fmt: skip
    batches = -(-lines // 25)
    assert waited["job_ids"] == [f"pts:{n}" for n in range(batches)]
    assert (waited["state"], waited["result"]["inserted"]) == ("succeeded", lines)

    status = cli(env, "status", "pts")
    assert (status["state"], status["function"]) == ("succeeded", "record_metrics")
    assert status["children"]["states"] == {"succeeded": batches}
    assert status["children"]["jobs"] == batches
    result = cli(env, "result", "pts")
    assert result["result"]["inserted"] == lines
    assert await count(session_factory, Metric) == lines


async def test_a_result_is_read_back_after_redis_forgot_the_job(
    env, worker, clean_redis: RedisSpace
):
    made = cli(env, "enqueue", "create-profile", "--username", "grace",
               "--email", "grace@example.com", "--full-name", "Grace", "--job-id", "made",
               "--wait")  # fmt: skip
    await reset_redis_db(clean_redis)  # Redis forgets everything, the history does not

    result = cli(env, "result", "made")
    assert (result["state"], result["source"]) == ("succeeded", "history")
    assert result["result"]["id"] == made["result"]["id"]
    assert result["result"]["username"] == "grace"
    status = cli(env, "status", "made")
    assert (status["tries"], status["error"]) == (1, None)


async def test_a_queued_job_is_cancelled_and_never_runs(env, session_factory, tmp_path):
    cli(env, "enqueue", "create-profile", "--username", "never", "--email", "n@example.com",
        "--full-name", "N", "--job-id", "doomed")  # fmt: skip
    assert cli(env, "cancel", "doomed") == {"job_id": "doomed", "state": "cancelled"}

    worked = run_cli(["worker", "--burst"], env, timeout=90)  # nothing left to run
    assert worked.returncode == 0, worked.stderr
    assert await count(session_factory, Profile) == 0
    status = cli(env, "status", "doomed")
    assert (status["state"], status["source"]) == ("cancelled", "history")


# One path per kind of error, in a process of its own; every path, in-process:
# tests/cli/test_job_history.py (test_json_mode_prints_one_object_on_every_error_path).
@pytest.mark.parametrize(
    ("args", "code", "kind"),
    [
        (["status", "nobody"], 1, "failed"),
        (["enqueue", "start-run", "1", "--wait", "--timeout", "0.5"], 3, "timeout"),
        (["enqueue", "record-metrics", "1", "--file", "/nonexistent.jsonl"], 2, "bad_input"),
    ],
)
def test_each_kind_of_error_prints_one_json_object(env, args, code, kind):
    error = cli(env, *args, code=code)["error"]
    assert error["type"] == kind
    assert error["message"]


def test_an_unreachable_redis_is_one_json_object_too(env):
    dead = {**env, "REDIS_URL": "redis://127.0.0.1:1/0", "JOBS_REDIS_CONNECT_RETRIES": "0"}
    error = cli(dead, "status", "any", code=1)["error"]
    assert "cannot reach Redis at 127.0.0.1:1/0" in error["message"]
