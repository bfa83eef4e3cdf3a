"""The CLI reads the job history: results after Redis forgets, lists, handled failures,
forced retries, cancelled jobs, submissions as a whole, and one JSON object on every path."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from domain.db import utcnow
from domain.repositories import JobStamp
from domain.views import ProfileView
from tests.cli.conftest import one_json
from worker.ops.job_notes import SUBMISSION_PREFIX

CREATED = {
    "id": 7, "username": "ada", "email": "ada@example.com", "full_name": "Ada L", "bio": "",
    "version": 1, "created_at": "2026-11-29T10:00:00Z", "updated_at": "2026-11-29T10:00:00Z",
}  # fmt: skip


@pytest.fixture
def record(uow_factory):
    """Writes job outcomes as a worker would."""

    async def write(
        job_id: str,
        function: str = "create_profile",
        *,
        status: str = "succeeded",
        parent: str | None = None,
        retryable: bool = True,
        payload: dict[str, Any] | None = None,
        ago: float = 0,
    ) -> None:
        stamp = JobStamp(job_id, function, 1, utcnow() - timedelta(seconds=ago), "w:1", parent)
        async with uow_factory() as uow:
            if status == "succeeded":
                result = ProfileView.model_validate(CREATED).model_dump(mode="json")
                await uow.jobs.record_success(stamp, result=result)
            else:
                await uow.jobs.record_failure(
                    stamp,
                    error_type="RunNotFound" if not retryable else "KeyError",
                    message="run 999 not found" if not retryable else "'oops'",
                    payload=payload or {"run_id": 999, "status": "completed"},
                    retryable=retryable,
                )
            await uow.commit()

    return write


async def test_a_result_is_read_from_the_history_once_redis_forgot_it(cli, record):
    await record("made")
    result = one_json(await cli("result", "made", "--json"))
    assert (result["state"], result["source"]) == ("succeeded", "history")
    assert result["result"]["id"] == 7
    human = await cli("result", "made")
    assert human.exit_code == 0
    assert json.loads(human.stdout)["username"] == "ada"


async def test_list_filters_by_state_and_function_newest_first(cli, record):
    await record("old", ago=60)
    await record("new")
    await record("broken", "finish_run", status="failed")
    everything = one_json(await cli("list", "--json"))["jobs"]
    assert [job["job_id"] for job in everything] == ["broken", "new", "old"]
    failed = one_json(await cli("list", "--state", "failed", "--json"))["jobs"]
    assert [job["job_id"] for job in failed] == ["broken"]
    made = one_json(await cli("list", "--function", "create_profile", "--json"))["jobs"]
    assert [job["job_id"] for job in made] == ["new", "old"]
    refused = await cli("list", "--state", "lost")
    assert refused.exit_code == 2
    assert "--state: Input should be" in refused.stderr


GENERATED = "5f0c1e7a9b2d4c6e8f1a3b5c7d9e0f12"  # arq's ids: 32 hex digits
CHUNK = GENERATED + ":chunk:12"


@pytest.mark.parametrize("command", ["list", "failed"])
async def test_a_table_fits_80_columns_with_every_id_whole(cli, record, command):
    assert (await cli(command)).stdout.strip() in {
        "no job in the history",
        "no failed job waits to be handled",
    }
    await record(CHUNK, "generate_profiles_chunk", status="failed")
    await record(GENERATED, "record_metrics", status="failed")
    table = await cli(command, COLUMNS="80")
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for job_id in (CHUNK, GENERATED):  # whole, on one line, copyable
        assert any(f" {job_id} " in line for line in lines), table.stdout
    assert "…" not in table.stdout
    assert "KeyError" in table.stdout or command == "list"  # the error beside the id
    wide = (await cli(command, COLUMNS="200")).stdout
    assert "tries" in wide  # every column when there is room


async def test_rows_too_wide_for_a_table_read_as_records_with_nothing_cut(cli, record):
    """A generation's chunk id beside its function's name takes 80 columns by itself: each
    row is then the id on a line of its own and its other cells below, none cut."""
    chunk = f"generation:12:chunk:99:{GENERATED}"
    await record(chunk, "generate_profiles_chunk", status="failed")
    shown = (await cli("list", COLUMNS="80")).stdout
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80, shown
    assert chunk in lines, shown
    assert "  function: generate_profiles_chunk  state: failed  tries: 1" in lines, shown
    assert any(re.fullmatch(r"  finished: \d\d-\d\d \d\d:\d\d:\d\d", line) for line in lines)
    assert "…" not in shown


async def test_a_unique_prefix_of_an_id_works_wherever_an_id_does(cli, record):
    await record(GENERATED, "finish_run", status="failed")
    await record(GENERATED[:8] + "ff", "finish_run", status="failed")
    status = one_json(await cli("status", GENERATED[:10], "--json"))
    assert status["job_id"] == GENERATED
    human = await cli("status", GENERATED[:10])
    assert f"job {GENERATED}: failed" in human.stdout
    ambiguous = await cli("status", GENERATED[:8])
    assert ambiguous.exit_code == 1
    assert f"job id prefix '{GENERATED[:8]}' is ambiguous: 2 jobs start with it" in (
        ambiguous.stderr
    )
    unknown = await cli("status", "0ddba11")
    assert unknown.exit_code == 1
    assert "job 0ddba11 is unknown" in unknown.stderr
    handled = one_json(await cli("failed", "--handle", GENERATED[:10], "--json"))
    assert handled["handled"] == 1
    assert [job["job_id"] for job in handled["failed"]] == [GENERATED[:8] + "ff"]
    retried = one_json(await cli("retry", GENERATED[:10], "--json"))
    assert retried["job_id"] == GENERATED + ":retry:1"


async def test_failures_can_be_marked_handled(cli, record):
    for job_id in ("one", "two", "three"):
        await record(job_id, "finish_run", status="failed")
    handled = one_json(await cli("failed", "--handle", "one", "--json"))
    assert handled["handled"] == 1
    assert {job["job_id"] for job in handled["failed"]} == {"two", "three"}
    rest = one_json(await cli("failed", "--handle-all", "--json"))
    assert (rest["handled"], rest["failed"]) == (2, [])
    assert (await cli("failed")).stdout.strip() == "no failed job waits to be handled"
    # Handled failures stay in the history.
    assert len(one_json(await cli("list", "--state", "failed", "--json"))["jobs"]) == 3


async def test_a_retry_that_cannot_help_needs_force(cli, queue, record):
    await record("hopeless", "finish_run", status="failed", retryable=False)
    refused = await cli("retry", "hopeless", "--json")
    assert refused.exit_code == 1
    assert "use --force" in one_json(refused)["error"]["message"]
    assert queue.job_ids() == []
    forced = one_json(await cli("retry", "hopeless", "--force", "--json"))
    assert forced["job_id"] == "hopeless:retry:1"
    assert queue.job_ids() == ["hopeless:retry:1"]


async def test_a_queued_job_is_cancelled_and_recorded(cli, queue):
    enqueued = await cli("enqueue", "start-run", "3", "--job-id", "later")
    assert enqueued.exit_code == 0, enqueued.stderr
    cancelled = one_json(await cli("cancel", "later", "--json"))
    assert cancelled == {"job_id": "later", "state": "cancelled"}
    assert queue.job_ids() == []
    assert queue.job_keys() == []
    status = one_json(await cli("status", "later", "--json"))
    assert (status["state"], status["function"]) == ("cancelled", "start_run")
    again = await cli("cancel", "later", "--json")
    assert again.exit_code == 1
    assert "only a waiting job can be cancelled" in one_json(again)["error"]["message"]


async def test_a_submission_is_followed_through_its_children(cli, queue, record):
    queue.client.set(
        SUBMISSION_PREFIX + "file", json.dumps({"function": "record_metrics", "jobs": 3})
    )
    await record("file:0", "record_metrics", parent="file")
    partial = one_json(await cli("status", "file", "--json"))
    assert partial["state"] == "in_progress"
    assert partial["children"]["states"] == {"succeeded": 1}
    assert partial["children"]["jobs"] == 3
    await record("file:1", "record_metrics", parent="file")
    await record("file:2", "record_metrics", parent="file", status="failed")
    done = await cli("status", "file")
    assert "job file: failed (record_metrics)" in done.stdout
    assert "3 of 3 ended: 1 failed, 2 succeeded" in done.stdout
    result = await cli("result", "file", "--json")
    assert result.exit_code == 1
    assert "1 of 3 jobs failed; first, file:2" in one_json(result)["error"]["message"]


async def test_a_submission_of_successes_adds_up_its_results(cli, queue, record):
    queue.client.set(
        SUBMISSION_PREFIX + "ok", json.dumps({"function": "create_profile", "jobs": 2})
    )
    await record("ok:0", parent="ok")
    await record("ok:1", parent="ok")
    result = one_json(await cli("result", "ok", "--json"))
    assert result["state"] == "succeeded"
    assert result["result"] == {"version": 2}  # ints added up; ids are not


@pytest.mark.parametrize(
    ("args", "code", "kind"),
    [
        (["enqueue", "start-run", "1", "--wait", "--timeout", "0.2"], 3, "timeout"),
        (["status", "nobody"], 1, "failed"),
        (["enqueue", "start-run", "nope"], 2, "bad_input"),
        (["enqueue", "start-run", "1", "--bogus"], 2, "bad_input"),
        (["retry", "nobody"], 1, "failed"),
        (["result", "nobody", "--wait", "--timeout", "1"], 1, "failed"),
        (["enqueue", "record-metric", "1", "loss", "-3", "nan"], 2, "bad_input"),
        (["enqueue", "record-metrics", "1", "--file", "/nonexistent.jsonl"], 2, "bad_input"),
        (["cancel", "nobody"], 1, "failed"),
        (["experiments", "show", "404"], 1, "failed"),
    ],
)
async def test_json_mode_prints_one_object_on_every_error_path(cli, args, code, kind):
    result = await cli(*args, "--json")
    assert result.exit_code == code, result.stderr
    error = one_json(result)["error"]
    assert error["type"] == kind
    assert error["message"]
    assert set(error) == {"type", "message", "job_id"}


async def test_dbjobs_alone_prints_help_and_version_is_known(cli):
    bare = await cli()
    assert "Usage: dbjobs" in bare.stdout + bare.stderr
    assert "enqueue" in bare.stdout + bare.stderr
    version = await cli("--version")
    assert version.exit_code == 0
    assert version.stdout.startswith("dbjobs ")


async def retrying(uow_factory, job_id: str, function: str = "start_run") -> None:
    stamp = JobStamp(job_id, function, 1, utcnow(), "w:1")
    async with uow_factory() as uow:
        await uow.jobs.record_retry(
            stamp,
            error_type="OperationalError",
            message="the database was away",
            payload={"experiment_id": 3},
            retry_at=utcnow() + timedelta(seconds=30),
        )
        await uow.commit()


async def test_a_job_still_retrying_is_not_retried_twice_at_once(cli, queue, uow_factory):
    await retrying(uow_factory, "busy")
    refused = await cli("retry", "busy", "--json")
    assert refused.exit_code == 1
    assert "still retrying" in one_json(refused)["error"]["message"]
    assert queue.job_ids() == []
    forced = one_json(await cli("retry", "busy", "--force", "--json"))
    assert forced["job_id"] == "busy:retry:1"


async def test_a_job_waiting_for_its_next_try_is_cancelled_for_good(cli, queue, uow_factory):
    assert (await cli("enqueue", "start-run", "3", "--job-id", "waiting")).exit_code == 0
    await retrying(uow_factory, "waiting")
    assert one_json(await cli("cancel", "waiting", "--json"))["state"] == "cancelled"
    assert queue.job_ids() == []
    status = one_json(await cli("status", "waiting", "--json"))
    assert (status["state"], status["next_retry_at"]) == ("cancelled", None)


async def test_a_function_filter_is_a_name_not_arbitrary_text(cli):
    refused = await cli("list", "--function", "x'; DROP TABLE job_records; --")
    assert refused.exit_code == 2
    assert "--function: String should match pattern" in refused.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["enqueue", "finish-run", "1"],
            "Missing option '--status'. Choose from: completed, failed",
        ),
        (["enqueue", "start-run", "1", "--bogus"], "Got unexpected extra argument(s) (--bogus)"),
        (["nonsense"], "No such command 'nonsense'."),
    ],
)
async def test_a_mistyped_command_line_gets_the_one_error_style(cli, args, says):
    result = await cli(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {says}")
    assert "--help`" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
