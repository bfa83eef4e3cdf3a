"""``dbjobs enqueue update-profile ID --file changes.json``: changes from a JSON object."""

from __future__ import annotations

import json

import pytest


async def enqueue(cli, *args: str, stdin: str | None = None):
    return await cli("enqueue", "update-profile", "42", *args, "--job-id", "u42", stdin=stdin)


async def test_a_file_of_changes_is_sent_as_the_changes(cli, queue, tmp_path):
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"bio": "Likes queues", "full_name": "Ada Lovelace"}))
    result = await enqueue(cli, "--file", str(changes))
    assert result.exit_code == 0, result.stderr
    assert queue.payload("u42") == {
        "profile_id": 42,
        "changes": {"bio": "Likes queues", "full_name": "Ada Lovelace"},
    }


async def test_dash_reads_the_changes_from_stdin(cli, queue):
    result = await enqueue(cli, "--file", "-", stdin='{"email": "ada@example.org"}')
    assert result.exit_code == 0, result.stderr
    assert queue.payload("u42")["changes"] == {"email": "ada@example.org"}


async def test_set_adds_to_the_file_and_wins_for_a_field_in_both(cli, queue):
    result = await enqueue(
        cli, "--file", "-", "--set", "bio=from --set", stdin='{"bio": "file", "full_name": "F"}'
    )
    assert result.exit_code == 0, result.stderr
    assert queue.payload("u42")["changes"] == {"bio": "from --set", "full_name": "F"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"nickname": "x"}', "--file -: nickname: unknown field (settable: bio, email,"),
        ('{"bio": "x", "version": 3}', "--file -: version: read-only field, it cannot be set"),
        ('{"id": 7}', "--file -: id: read-only field"),
        ("bio: x", "--file -: not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        ('["bio", "x"]', '--file -: expected a JSON object of changes, like {"bio": "Hi"}'),
        ('"bio"', "--file -: expected a JSON object of changes"),
        ("{}", "--file -: no field to change in it"),
        ('{"email": "nope"}', "--file -: email: value is not a valid email address"),
        ('{"bio": 5}', "--file -: bio: Input should be a valid string"),
        ('{"bio": null}', "--file -: input: null given for bio"),
        ("", "--file -: not valid JSON"),
    ],
)
async def test_bad_changes_are_refused_naming_the_problem(cli, queue, content, problem):
    result = await enqueue(cli, "--file", "-", stdin=content)
    assert result.exit_code == 2
    assert problem in result.stderr
    assert result.stdout == ""
    assert queue.job_ids() == []


async def test_a_file_that_cannot_be_read_is_refused(cli, queue, tmp_path):
    missing = await enqueue(cli, "--file", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2
    assert "No such file or directory" in missing.stderr
    binary = tmp_path / "changes.json"
    binary.write_bytes(b'{"bio": "\xff"}')
    result = await enqueue(cli, "--file", str(binary))
    assert result.exit_code == 2
    assert "not UTF-8 text" in result.stderr
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"bio": "x" * 70_000}))
    result = await enqueue(cli, "--file", str(huge))
    assert result.exit_code == 2
    assert "over 65,536 characters" in result.stderr
    assert queue.job_ids() == []
