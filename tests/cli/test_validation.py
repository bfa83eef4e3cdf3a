"""Bad input is refused before Redis is touched: the field named, exit code 2, nothing queued."""

from __future__ import annotations

import pytest

from tests.cli.conftest import closed_port, one_json

VALID_PROFILE = ("--username", "ada", "--email", "ada@example.com", "--full-name", "Ada L")

BAD_INPUT = [
    (["create-profile", "--username", "ab", *VALID_PROFILE[2:]], "--username"),
    (["create-profile", "--username", "x.g1n2", *VALID_PROFILE[2:]], "reserved"),
    (["create-profile", *VALID_PROFILE[:2], "--email", "nope", *VALID_PROFILE[4:]], "--email"),
    (["create-profile", *VALID_PROFILE, "--bio", "x" * 2001], "--bio"),
    (["create-profile", *VALID_PROFILE, "--job-id", "two words"], "--job-id"),
    (["generate-profiles", "--count", "0"], "--count: Input should be greater than or equal"),
    (["generate-profiles", "--count", "10000001"], "--count"),
    (["generate-profiles", "--count", "5", "--chunk-size", "0"], "--chunk-size"),
    (
        ["generate-profiles", "--count", "30000", "--chunk-size", "1"],
        "--chunk-size: Input should be greater than or equal to 100",
    ),
    (
        ["generate-profiles", "--count", "10000000", "--chunk-size", "100"],
        "--chunk-size: at least 10,000 for 10,000,000 profiles",
    ),
    (["generate-profiles", "--count", "5", "--job-id", "k" * 65], "--job-id"),
    (["update-profile", "1", "--set", "id=5"], "--set id: read-only"),
    (["update-profile", "1", "--set", "created_at=2024-01-01"], "--set created_at: read-only"),
    (["update-profile", "1", "--set", "nickname=x"], "--set nickname: unknown field"),
    (["update-profile", "1", "--set", "bio"], "expected FIELD=VALUE"),
    (["update-profile", "1"], "--set: no field to change"),
    (["update-profile", "1", "--set", "email=bad"], "--set email: value is not a valid email"),
    (["update-profile", "0", "--set", "bio=x"], "PROFILE_ID: Input should be greater than"),
    (["update-profile", "1", "--set", "bio=x", "--expected-version", "0"], "--expected-version"),
    (["create-experiment", "--owner", "0", "--name", "n"], "--owner"),
    (["create-experiment", "--owner", "1", "--name", "   "], "--name"),
    (["start-run", "1", "--seed", "-1"], "--seed"),
    (["start-run", str(2**63), "--seed", "1"], "EXPERIMENT_ID"),
    (["finish-run", "0", "--status", "failed"], "RUN_ID"),
    (["record-metric", "1", "loss", "3", "nan"], "VALUE: Input should be a finite number"),
    (["record-metric", "1", "loss", "3", "-inf"], "VALUE: Input should be a finite number"),
    (["record-metric", "1", "loss", "-1", "0.5"], "STEP: Input should be greater than"),
    (["record-metric", "1", " ", "1", "0.5"], "NAME"),
    (["record-metric", "1", "loss", "1", "0.5", "--recorded-at", "2024-01-01T00:00"], "timezone"),
    (["record-metric", "1", "'; DROP TABLE metrics; --", "1", "0.5", "--job-id", ""], "--job-id"),
    (["fail-stale-runs", "--idle-seconds", "0"], "--idle-seconds"),
    (["prune-job-history", "--keep-days", "0"], "--keep-days"),
]


@pytest.mark.parametrize(("args", "problem"), BAD_INPUT)
async def test_bad_input_is_refused_and_nothing_is_enqueued(cli, queue, args, problem):
    result = await cli("enqueue", *args, "--json")
    assert result.exit_code == 2, result.stderr
    assert problem in result.stderr
    error = one_json(result)["error"]  # --json: one object on stdout on every path
    assert error["type"] == "bad_input"
    assert problem in error["message"]
    assert queue.job_ids() == []
    assert queue.job_keys() == []


async def test_bad_metric_files_name_the_line_and_enqueue_nothing(cli, queue, tmp_path):
    points = tmp_path / "points.jsonl"
    lines = [f'{{"name": "loss", "step": {n}, "value": 0.5}}' for n in range(3000)]
    lines[2041] = '{"name": "loss", "step": 2041, "value": NaN}'
    points.write_text("\n".join(lines))
    result = await cli("enqueue", "record-metrics", "1", "--file", str(points), "--job-id", "f")
    assert result.exit_code == 2
    assert "1 bad line, nothing enqueued" in result.stderr
    assert "line 2042: value: Input should be a finite number" in result.stderr
    # Two good batches were checked before the bad line: neither is in Redis, nor is
    # the submission they would have belonged to.
    assert queue.job_ids() == []
    assert queue.job_keys() == []
    assert list(queue.client.scan_iter("dbjobs:submission:*")) == []


async def test_click_refuses_malformed_arguments_with_exit_code_2(cli, queue):
    for args in (
        ["finish-run", "1", "--status", "done"],
        ["record-metric", "1", "loss", "three", "0.5"],
        ["record-metrics", "1", "--file", "x.csv", "--batch-size", "0"],
        ["create-profile", "--username", "ada"],
    ):
        result = await cli("enqueue", *args)
        assert result.exit_code == 2, (args, result.stderr)
    assert queue.job_ids() == []


def test_validation_happens_before_any_connection(pg_database):
    from tests.cli.conftest import Cli, cli_env

    dead = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    result = Cli(cli_env(pg_database, dead)).invoke("enqueue", "start-run", "0")
    assert result.exit_code == 2
    assert "EXPERIMENT_ID" in result.stderr
    assert "Redis" not in result.stderr
