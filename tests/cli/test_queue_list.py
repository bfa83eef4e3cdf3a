"""``dbjobs list --state queued|deferred|running``: the jobs on the queue, in its order, with
their function, enqueue time and payload; whole ids at 80 columns."""

from __future__ import annotations

from tests.cli.conftest import one_json

HOSTILE = "\x1b[31mred\u202e"


async def test_the_queue_is_listed_with_whole_ids_at_80_columns(cli):
    created = await cli(
        "enqueue", "create-profile", "--username", "ada", "--email", "a@example.com",
        "--full-name", HOSTILE, "--json",
    )  # fmt: skip
    made = one_json(created)
    started = one_json(await cli("enqueue", "start-run", "7", "--json"))
    listed = one_json(await cli("list", "--state", "queued", "--json"))
    assert [job["job_id"] for job in listed["jobs"]] == [made["job_id"], started["job_id"]]
    first = listed["jobs"][0]
    assert (first["function"], first["state"], first["worker"]) == (
        "create_profile",
        "queued",
        None,
    )
    assert first["enqueued_at"] is not None
    assert '"username":"ada"' in first["payload_preview"]
    assert "\x1b" not in first["payload_preview"]  # escaped, as JSON escapes it
    assert "\\u001b[31mred\\u202e" in first["payload_preview"]

    only = one_json(await cli("list", "--state", "queued", "--function", "start_run", "--json"))
    assert [job["job_id"] for job in only["jobs"]] == [started["job_id"]]

    table = await cli("list", "--state", "queued", COLUMNS="80")
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for job in listed["jobs"]:
        assert any(f" {job['job_id']} " in line for line in lines), table.stdout
    assert "create_profile" in table.stdout

    assert (await cli("list", "--state", "running")).stdout.strip() == "no running job on the queue"
    assert (await cli("list", "--state", "failed")).stdout.strip() == (
        "no failed job in the history"
    )


async def test_the_queue_is_listed_lane_by_lane_and_by_lane(cli):
    """The most urgent lane first, whatever the order of enqueue; --lane keeps one lane."""
    bulk = one_json(await cli("enqueue", "start-run", "7", "--lane", "bulk", "--json"))
    urgent = one_json(await cli("enqueue", "start-run", "8", "--json"))
    listed = one_json(await cli("list", "--state", "queued", "--json"))["jobs"]
    assert [(job["job_id"], job["lane"]) for job in listed] == [
        (urgent["job_id"], "interactive"),
        (bulk["job_id"], "bulk"),
    ]
    only = one_json(await cli("list", "--lane", "bulk", "--json"))["jobs"]
    assert [job["job_id"] for job in only] == [bulk["job_id"]]
    table = (await cli("list", "--lane", "bulk", COLUMNS="200")).stdout
    assert " bulk " in table
    refused = await cli("list", "--state", "failed", "--lane", "bulk")
    assert refused.exit_code == 2
    assert "failed jobs are the history's, which has no lanes" in refused.stderr
