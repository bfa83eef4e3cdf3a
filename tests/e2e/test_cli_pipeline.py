"""``jobs`` as a user runs it: CLI process -> Redis -> worker process -> rows in PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from domain.db import utcnow
from domain.models import Experiment, JobRecord, Metric, Profile, Run
from domain.repositories import JobRecordRepository
from worker.testing.processes import run_cli

pytestmark = pytest.mark.e2e


def cli(env: dict[str, str], *args: str, code: int = 0) -> dict[str, Any]:
    """Run ``jobs <args> --json``; check the exit code; the one JSON object it printed."""
    done = run_cli([*args, "--json"], env, timeout=90)
    assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0])


async def count(session_factory, model, *where) -> int:
    async with session_factory() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_generate_profiles_waits_for_the_exact_count_once(env, worker, session_factory):
    args = ("enqueue", "generate-profiles", "--count", "2500", "--chunk-size", "1000")
    first = cli(env, *args, "--seed", "7", "--job-id", "gen-e2e", "--wait")
    assert first["state"] == "succeeded"
    assert first["result"]["rows_done"] == 2500
    assert (first["result"]["chunks"], first["result"]["chunks_done"]) == (3, 3)
    again = cli(env, *args, "--seed", "7", "--job-id", "gen-e2e", "--wait")
    assert again["deduplicated"] == 1
    assert again["result"]["generation_id"] == first["result"]["generation_id"]
    assert await count(session_factory, Profile) == 2500
    status = cli(env, "status", "gen-e2e")
    assert status["children"] == {
        "generation_id": first["result"]["generation_id"],
        "chunks": 3,
        "chunks_done": 3,
        "profiles": 2500,
        "profiles_written": 2500,
        "done": True,
    }
    told = run_cli(["status", "gen-e2"], env)  # a unique prefix will do
    assert "3 of 3 chunks committed, 2,500 of 2,500 profiles written" in told.stdout
    human = run_cli([*args, "--seed", "8", "--job-id", "gen-e2e-2", "--wait"], env, timeout=90)
    assert "(job gen-e2e-2): 2,500 of 2,500 profiles" in human.stdout, human.stdout


async def test_profile_and_tracker_flow_through_the_cli(env, worker, session_factory, tmp_path):
    profile = cli(
        env, "enqueue", "create-profile", "--username", "ada", "--email", "ada@example.com",
        "--full-name", "Ada", "--wait",
    )["result"]  # fmt: skip
    updated = cli(
        env, "enqueue", "update-profile", str(profile["id"]), "--set", "bio=Counts things",
        "--set", "full_name=Ada Lovelace", "--expected-version", "1", "--wait",
    )["result"]  # fmt: skip
    assert (updated["version"], updated["bio"]) == (2, "Counts things")
    experiment = cli(
        env, "enqueue", "create-experiment", "--owner", str(profile["id"]), "--name", "engine",
        "--wait",
    )["result"]  # fmt: skip
    run = cli(env, "enqueue", "start-run", str(experiment["id"]), "--seed", "1", "--wait")
    run_id = str(run["result"]["id"])
    points = tmp_path / "points.csv"
    points.write_text(
        "name,step,value\n" + "".join(f"loss,{step},{1 / (step + 1)}\n" for step in range(10_000))
    )
    batches = cli(env, "enqueue", "record-metrics", run_id, "--file", str(points), "--wait")
    assert len(batches["job_ids"]) == 10
    assert batches["result"]["inserted"] == 10_000
    one = cli(env, "enqueue", "record-metric", run_id, "accuracy", "0", "0.5", "--wait")
    assert one["result"]["inserted"] == 1
    cli(env, "enqueue", "finish-run", run_id, "--status", "completed", "--wait")
    shown = cli(env, "experiments", "show", str(experiment["id"]))
    assert shown["state"] == "completed"
    assert [(r["id"], r["state"], r["points"]) for r in shown["runs"]] == [
        (int(run_id), "completed", 10_001)
    ]
    summary = cli(env, "runs", "show", run_id)
    assert [(m["name"], m["points"], m["last"]) for m in summary["metrics"]] == [
        ("accuracy", 1, 0.5),
        ("loss", 10_000, 1 / 10_000),
    ]
    history = cli(env, "runs", "metrics", run_id, "--name", "loss", "--points", "10")
    buckets = history["series"][0]["buckets"]
    assert [(b["first_step"], b["points"]) for b in buckets] == [
        (n * 1000, 1000) for n in range(10)
    ]
    assert (buckets[0]["max"], buckets[-1]["last"]) == (1.0, 1 / 10_000)

    async with session_factory() as session:
        stored = await session.get(Profile, profile["id"])
        assert (stored.full_name, stored.bio, stored.version) == (
            "Ada Lovelace",
            "Counts things",
            2,
        )
    assert await count(session_factory, Metric, Metric.run_id == int(run_id)) == 10_001
    assert await count(session_factory, Run, Run.status == "completed") == 1
    assert await count(session_factory, Experiment, Experiment.status == "completed") == 1


async def test_cron_jobs_enqueued_by_hand(env, worker, session_factory):
    long_ago = utcnow() - timedelta(minutes=10)
    ten_days_ago = utcnow() - timedelta(days=10)
    async with session_factory() as session:
        profile = Profile(username="idle", email="idle@example.com", full_name="Idle")
        experiment = Experiment(owner=profile, name="slow")
        stale = Run(experiment=experiment, status="running", last_activity_at=long_ago)
        fresh = Run(experiment=experiment, status="running")
        ancient = JobRecord(
            job_id="ancient", function="start_run", status="succeeded", tries=1,
            enqueued_at=ten_days_ago, started_at=ten_days_ago, finished_at=ten_days_ago,
            duration_ms=5,
        )  # fmt: skip
        session.add_all([profile, experiment, stale, fresh, ancient])
        await session.commit()
        stale_id, fresh_id = stale.id, fresh.id

    failed = cli(env, "enqueue", "fail-stale-runs", "--idle-seconds", "60", "--wait")
    assert failed["result"]["run_ids"] == [stale_id]
    pruned = cli(env, "enqueue", "prune-job-history", "--keep-days", "7", "--wait")
    assert pruned["result"]["deleted"] == 1

    async with session_factory() as session:
        assert (await session.get(Run, stale_id)).status == "failed"
        assert (await session.get(Run, fresh_id)).status == "running"
        assert await JobRecordRepository(session).get("ancient") is None


async def test_a_permanent_failure_is_shown_listed_and_retried(env, worker, session_factory):
    doomed = run_cli(
        ["enqueue", "finish-run", "999", "--status", "completed", "--wait", "--job-id", "doomed"],
        env,
    )
    assert doomed.returncode == 1
    assert "RunNotFound: run 999 not found" in doomed.stderr
    listed = cli(env, "failed")["failed"]
    assert [(f["job_id"], f["error_type"]) for f in listed] == [("doomed", "RunNotFound")]

    # An unknown run stays unknown: a plain retry says so, --force tries anyway.
    hint = cli(env, "retry", "doomed", code=1)["error"]
    assert "RunNotFound, which running it again will not change" in hint["message"]
    again = cli(env, "retry", "doomed", "--force", "--wait", code=1)
    assert (again["job_id"], again["error"]["type"]) == ("doomed:retry:1", "RunNotFound")

    async with session_factory() as session:  # now the run exists: the next attempt works
        profile = Profile(username="late", email="late@example.com", full_name="Late")
        session.add(Run(id=999, experiment=Experiment(owner=profile, name="late")))
        await session.commit()
    retried = cli(env, "retry", "doomed", "--force", "--wait")
    assert (retried["job_id"], retried["state"]) == ("doomed:retry:2", "succeeded")
    refused = run_cli(["retry", "doomed", "--force"], env)
    assert refused.returncode == 1
    assert "already retried: doomed:retry:2 succeeded" in refused.stderr
    async with session_factory() as session:
        assert (await session.get(Run, 999)).status == "completed"


async def test_duplicate_enqueue_status_and_result(env, worker, session_factory):
    args = ("enqueue", "create-profile", "--username", "grace", "--email", "g@example.com")
    first = cli(env, *args, "--full-name", "Grace", "--job-id", "p1", "--wait")
    second = cli(env, *args, "--full-name", "Grace", "--job-id", "p1", "--wait")
    assert (first["deduplicated"], second["deduplicated"]) == (0, 1)
    assert second["result"]["id"] == first["result"]["id"]
    assert await count(session_factory, Profile) == 1

    status = cli(env, "status", "p1")
    assert (status["state"], status["source"], status["function"]) == (
        "succeeded",
        "redis",
        "create_profile",
    )
    assert cli(env, "result", "p1")["result"]["username"] == "grace"

    client = redis.Redis.from_url(env["REDIS_URL"])  # Redis forgets the result...
    try:
        assert client.delete("arq:result:p1") == 1
    finally:
        client.close()
    remembered = cli(env, "status", "p1")  # ...the job history does not
    assert (remembered["state"], remembered["source"]) == ("succeeded", "history")
