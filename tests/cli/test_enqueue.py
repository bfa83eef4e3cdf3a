"""What ``dbjobs enqueue`` puts on the queue (no worker runs here) and what it prints."""

from __future__ import annotations

import pytest

from tests.cli.conftest import one_json


async def test_json_output_is_one_object_and_the_job_is_queued(cli, queue):
    result = await cli(
        "enqueue", "create-profile", "--username", " ada ", "--email", "ada@example.com",
        "--full-name", "Ada L", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = one_json(result)
    assert data == {
        "job_id": data["job_id"],
        "function": "create_profile",
        "state": "queued",
        "source": "redis",
        "tries": None,
        "finished_at": None,
        "next_retry_at": None,
        "error": None,
        "children": None,
        "job_ids": [data["job_id"]],
        "deduplicated": 0,
    }
    assert queue.job_ids() == [data["job_id"]]
    # The payload sent is the validated one: stripped, and only the fields given.
    assert queue.payload(data["job_id"]) == {
        "username": "ada",
        "email": "ada@example.com",
        "full_name": "Ada L",
    }


async def test_people_get_the_job_id_and_how_to_follow_it(cli, queue):
    result = await cli("enqueue", "start-run", "7", "--seed", "3", "--job-id", "run-7")
    assert result.exit_code == 0, result.stderr
    assert "start_run as job run-7" in result.stdout
    assert "dbjobs status run-7" in result.stderr
    assert queue.payload("run-7") == {"experiment_id": 7, "seed": 3}


async def test_the_same_job_id_enqueues_once(cli, queue):
    args = ("enqueue", "finish-run", "4", "--status", "completed", "--job-id", "end-4", "--json")
    first, second = one_json(await cli(*args)), one_json(await cli(*args))
    assert (first["deduplicated"], second["deduplicated"]) == (False, True)
    assert second["state"] == "queued"
    assert queue.job_ids() == ["end-4"]


async def test_a_job_id_reused_for_another_request_is_refused(cli, queue):
    await cli("enqueue", "finish-run", "4", "--status", "completed", "--job-id", "end-4")
    result = await cli("enqueue", "finish-run", "4", "--status", "failed", "--job-id", "end-4")
    assert result.exit_code == 1
    assert "already exists as finish_run with another payload" in result.stderr
    assert queue.payload("end-4") == {"run_id": 4, "status": "completed"}


async def test_update_profile_sends_only_the_changes(cli, queue):
    result = await cli(
        "enqueue", "update-profile", "42", "--set", "bio=Hello, world", "--set",
        "full-name=Ada Lovelace", "--expected-version", "3", "--job-id", "u42",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert queue.payload("u42") == {
        "profile_id": 42,
        "changes": {"bio": "Hello, world", "full_name": "Ada Lovelace"},
        "expected_version": 3,
    }


async def test_generation_key_is_the_job_id(cli, queue):
    result = await cli("enqueue", "generate-profiles", "--count", "2500", "--job-id", "g1")
    assert result.exit_code == 0, result.stderr
    # No chunk size given: the worker's setting applies, not the schema's default.
    assert queue.payload("g1") == {"count": 2500, "key": "g1"}


async def test_negative_metric_values_are_values(cli, queue):
    result = await cli("enqueue", "record-metric", "5", "loss", "3", "-0.25", "--job-id", "m")
    assert result.exit_code == 0, result.stderr
    assert queue.payload("m") == {"run_id": 5, "name": "loss", "step": 3, "value": -0.25}


async def test_cron_jobs_can_be_enqueued_by_hand_leaving_defaults_to_the_worker(cli, queue):
    await cli("enqueue", "fail-stale-runs", "--job-id", "stale", JOBS_STALE_RUN_SECONDS="90")
    await cli("enqueue", "prune-job-history", "--keep-days", "3", "--job-id", "prune")
    assert queue.payload("stale") == {}  # the worker's JOBS_STALE_RUN_SECONDS applies
    assert queue.payload("prune") == {"keep_days": 3}


def points_csv(count: int) -> str:
    rows = "".join(f"loss,{step},{step / 10}\n" for step in range(count))
    return "name,step,value\n" + rows


async def test_metric_files_go_in_batch_jobs_enqueued_once(cli, queue, tmp_path):
    path = tmp_path / "points.csv"
    path.write_text(points_csv(2500))
    args = ("enqueue", "record-metrics", "9", "--file", str(path), "--job-id", "pts", "--json")
    first = one_json(await cli(*args))
    assert first["job_ids"] == ["pts:0", "pts:1", "pts:2"]
    assert first["deduplicated"] == 0
    assert queue.job_ids() == ["pts:0", "pts:1", "pts:2"]
    sizes = [len(queue.payload(job_id)["points"]) for job_id in first["job_ids"]]
    assert sizes == [1000, 1000, 500]
    assert queue.payload("pts:2")["points"][-1] == {"name": "loss", "step": 2499, "value": 249.9}
    assert queue.parent("pts:2") == "pts"  # the batches are one submission's children
    again = one_json(await cli(*args))
    assert again["deduplicated"] == 3
    assert queue.job_ids() == ["pts:0", "pts:1", "pts:2"]
    told = await cli(*args[:-1])
    assert "3 of 3 jobs already existed" in told.stderr


async def test_one_batch_keeps_the_job_id_and_stdin_works(cli, queue):
    result = await cli(
        "enqueue", "record-metrics", "9", "--file", "-", "--format", "csv", "--batch-size",
        "5000", "--job-id", "small", "--json", stdin=points_csv(30),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert one_json(result)["job_ids"] == ["small"]
    assert len(queue.payload("small")["points"]) == 30


@pytest.mark.parametrize("extra", [[], ["--json"]])
async def test_waiting_with_no_worker_times_out_with_exit_code_3(cli, queue, extra):
    result = await cli("enqueue", "start-run", "1", "--wait", "--timeout", "0.3", *extra)
    assert result.exit_code == 3
    assert "gave up waiting" in result.stderr
    assert "is still queued" in result.stderr
    assert len(queue.job_ids()) == 1


async def test_an_enqueue_no_replica_acknowledged_fails_saying_what_to_do(cli, queue):
    args = ("enqueue", "start-run", "7", "--job-id", "run-7")
    result = await cli(*args, JOBS_ENQUEUE_REPLICAS="1", JOBS_ENQUEUE_REPLICA_TIMEOUT="0.05")
    assert result.exit_code == 1
    told = result.stderr.strip().splitlines()
    assert told == [
        "error: 0 of the 1 Redis replicas asked for (JOBS_ENQUEUE_REPLICAS) acknowledged 1 "
        "job(s) within 50 ms: they are on the primary only, and a failover could lose them; "
        "enqueue them again under the same job ids"
    ], result.stderr


async def test_a_job_waits_in_its_lane_unless_told_another(cli, queue):
    base = ("enqueue", "finish-run", "4", "--status", "completed")
    assert (await cli(*base, "--job-id", "own")).exit_code == 0
    assert (await cli(*base, "--job-id", "sent", "--lane", "bulk")).exit_code == 0
    wrong = await cli(*base, "--job-id", "no", "--lane", "fast")

    assert queue.job_ids("interactive") == ["own"]
    assert queue.job_ids("bulk") == ["sent"]
    assert wrong.exit_code == 2
    assert "--lane" in wrong.stderr
    assert "no" not in queue.job_ids()
