"""Unusable settings and unreadable Redis data end a command in one line, never a traceback.

A ``REDIS_URL`` or ``DATABASE_URL`` that cannot be used is bad input (exit code 2), its
password never shown; a job or result in Redis that is not JSON fails the command (exit 1).
Every unusable URL is tried in-process; one of each, and the worker's, in a process of its
own as well, where nothing but that one line may reach stderr before it exits.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time

import pytest
from typer.testing import Result

from tests.cli.conftest import QUEUE, Cli, Queue, cli_env, closed_port, one_json
from worker.environment import database_address, redis_address, scrub
from worker.settings import Settings
from worker.testing.processes import ROOT
from worker.testing.scratch import RedisSpace

PASSWORD = "pw-hunter2"

BAD_REDIS_URLS = [
    f"redis://:{PASSWORD}@[127.0.0.1/0",
    f"redis://:{PASSWORD}@host:notaport/0",
    f"redis://:{PASSWORD}@host:99999/0",
    f"redis://:{PASSWORD}@host:{PASSWORD}/0",  # urllib quotes the port in its message
    f"redis://:{PASSWORD}@host/notadb",
    f"http://:{PASSWORD}@x",
    "",
    "%%%",
    f"redis+sentinel://:{PASSWORD}@s1:26379,s2:26379",  # no master named
    f"redis+sentinel://:{PASSWORD}@s1:{PASSWORD}/mymaster/0",
    f"redis+sentinel://:{PASSWORD}@s1,s2/mymaster/notadb",
]
BAD_DATABASE_URLS = [
    f"postgresql://u:{PASSWORD}@[::1/db",
    f"postgresql://u:{PASSWORD}@host:port/db",
    f"postgresql://u:{PASSWORD}@host:99999/db",
    f"http://u:{PASSWORD}@x/db",
    "",
    "%%%",
]


def jobs(*args: str, redis_url: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """The real ``jobs`` command in its own process, with only these two URLs set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBS_")}
    env.update(REDIS_URL=redis_url, DATABASE_URL=database_url, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def in_process(*args: str, redis_url: str, database_url: str) -> Result:
    """``jobs`` in-process (Typer's runner), with only these two URLs set."""
    return Cli(cli_env(database_url, redis_url)).invoke(*args)


def refused_as_bad_setting(result: subprocess.CompletedProcess[str] | Result, setting: str) -> None:
    if isinstance(result, Result):  # in-process: what escaped the command, not its stderr
        assert result.exception is None or isinstance(result.exception, SystemExit), result
        code = result.exit_code
    else:
        code = result.returncode
    assert code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {setting} is not a"), lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert PASSWORD not in result.stdout + result.stderr


def unused_database() -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/dbjobs"


@pytest.mark.parametrize("url", BAD_REDIS_URLS)
def test_an_unusable_redis_url_is_bad_input(url):
    result = in_process("status", "x", redis_url=url, database_url=unused_database())
    refused_as_bad_setting(result, "REDIS_URL")


@pytest.mark.parametrize("url", BAD_DATABASE_URLS)
def test_an_unusable_database_url_is_bad_input(url, clean_redis: RedisSpace):
    # Redis answers first (the job is unknown there), then the job history needs the database.
    result = in_process("status", "x", redis_url=clean_redis.url, database_url=url)
    refused_as_bad_setting(result, "DATABASE_URL")


def test_in_a_process_of_its_own_an_unusable_url_is_one_line_too(clean_redis: RedisSpace):
    bad_redis = jobs("status", "x", redis_url=BAD_REDIS_URLS[0], database_url=unused_database())
    refused_as_bad_setting(bad_redis, "REDIS_URL")
    bad_database = jobs("status", "x", redis_url=clean_redis.url, database_url=BAD_DATABASE_URLS[0])
    refused_as_bad_setting(bad_database, "DATABASE_URL")


def test_the_worker_refuses_a_redis_url_arq_cannot_use():
    result = jobs("worker", "--burst", redis_url=f"http://:{PASSWORD}@x", database_url="sqlite://")
    refused_as_bad_setting(result, "REDIS_URL")


@pytest.mark.parametrize("url", [*BAD_REDIS_URLS, *BAD_DATABASE_URLS])
def test_error_path_helpers_never_raise_nor_show_the_password(url):
    settings = Settings(redis_url=url, database_url=url)
    password = PASSWORD if PASSWORD in url else ""  # alone too, as a library may quote it
    message = f"{redis_address(settings)} {database_address(settings)} said {url} ({password})"
    assert PASSWORD not in scrub(message, settings)
    assert scrub("nothing secret here", settings) == "nothing secret here"


# Data in Redis that arq cannot read as a JSON job or result.
UNREADABLE = {
    "pickle": pickle.dumps({"t": 1, "f": "record_metric", "a": [], "k": {}, "et": 0}),
    "random bytes": bytes(range(255, -1, -7)),
    "JSON that is no object": b"[1, 2, 3]",
    "JSON missing fields": b'{"t": 1, "f": "record_metric"}',
}
JOB = "planted"
RECORD_METRIC = ("enqueue", "record-metric", "1", "loss", "0", "0.5", "--job-id", JOB)


def refused_as_unreadable(result: Result, key: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: job {JOB}: Redis holds data under {key} that is not a JSON")
    assert "Traceback" not in result.output


def plant_result(queue: Queue, raw: bytes) -> str:
    queue.client.set(f"arq:result:{JOB}", raw)
    return f"arq:result:{JOB}"


def plant_queued_job(queue: Queue, raw: bytes) -> str:
    """A job key as arq leaves it while the job waits: its definition, and its id queued."""
    queue.client.set(f"arq:job:{JOB}", raw)
    queue.client.zadd(QUEUE, {JOB: int(time.time() * 1000)})
    return f"arq:job:{JOB}"


@pytest.mark.parametrize("raw", UNREADABLE.values(), ids=UNREADABLE.keys())
@pytest.mark.parametrize(
    "args",
    [
        ("status", JOB),
        ("result", JOB),
        ("result", JOB, "--wait", "--timeout", "1"),
        RECORD_METRIC,
        (*RECORD_METRIC, "--wait"),
    ],
    ids=["status", "result", "result --wait", "enqueue", "enqueue --wait"],
)
async def test_an_unreadable_result(cli: Cli, queue: Queue, raw, args):
    key = plant_result(queue, raw)
    refused_as_unreadable(await cli(*args), key)


@pytest.mark.parametrize("raw", UNREADABLE.values(), ids=UNREADABLE.keys())
@pytest.mark.parametrize(
    "args", [("status", JOB), ("result", JOB), RECORD_METRIC], ids=["status", "result", "enqueue"]
)
async def test_an_unreadable_job(cli: Cli, queue: Queue, raw, args):
    key = plant_queued_job(queue, raw)
    refused_as_unreadable(await cli(*args), key)


async def test_waiting_on_an_unreadable_job_reads_only_its_state(cli: Cli, queue: Queue):
    """Waiting never reads the definition: a worker fails such a job with a clean error."""
    plant_queued_job(queue, UNREADABLE["pickle"])
    result = await cli("result", JOB, "--wait", "--timeout", "0.2")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: gave up waiting: job planted is still queued")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("wrong_type", [False, True], ids=["random bytes", "a hash"])
async def test_a_batch_wait_with_an_unreadable_result(cli: Cli, queue: Queue, wrong_type):
    """The batch wait reads many results at once, apart from ``Job``; --json: no note."""
    key = plant_result(queue, UNREADABLE["random bytes"])
    if wrong_type:
        queue.client.delete(key)
        queue.client.hset(key, "r", "1")
    points = '{"name": "loss", "step": 1, "value": 0.5}\n'
    result = await cli(
        "enqueue", "record-metrics", "1", "--file", "-", "--format", "jsonl", "--job-id", JOB,
        "--wait", "--json", stdin=points,
    )  # fmt: skip
    refused_as_unreadable(result, key)
    message = one_json(result)["error"]["message"]
    assert "Redis holds data under" in message
    assert ("(not a string)" in message) is wrong_type


@pytest.mark.parametrize("plant", [plant_result, plant_queued_job])
@pytest.mark.parametrize(
    "args", [("status", JOB), ("result", JOB), RECORD_METRIC], ids=["status", "result", "enqueue"]
)
async def test_json_mode_prints_one_error_object(cli: Cli, queue: Queue, plant, args):
    plant(queue, UNREADABLE["JSON that is no object"])
    result = await cli(*args, "--json")
    assert result.exit_code == 1
    assert "Redis holds data under" in result.stderr
    error = one_json(result)["error"]
    assert error["type"] == "failed"
    assert "Redis holds data under" in error["message"]


@pytest.mark.parametrize("plant", [plant_result, plant_queued_job])
@pytest.mark.parametrize(
    "args", [("status", JOB), ("result", JOB), RECORD_METRIC], ids=["status", "result", "enqueue"]
)
async def test_a_key_of_the_wrong_type(cli: Cli, queue: Queue, plant, args):
    key = plant(queue, b"")
    queue.client.delete(key)
    queue.client.hset(key, "f", "record_metric")  # a hash where arq keeps a string
    refused_as_unreadable(await cli(*args), key)


async def test_a_retry_note_or_a_submission_marker_not_of_ours_is_ignored(cli: Cli, queue: Queue):
    job = {"t": 1, "f": "record_metric", "a": [{}], "k": {}, "et": 1}
    queue.client.set(f"arq:job:{JOB}", json.dumps(job))
    queue.client.zadd(QUEUE, {JOB: int(time.time() * 1000) + 3_600_000})  # waits its next try
    queue.client.hset(f"dbjobs:retrying:{JOB}", "tries", "2")  # a hash: not a note
    queue.client.set("dbjobs:submission:parent", b"\x80 not a marker")

    waiting = await cli("status", JOB, "--json")
    parent = await cli("status", "parent")

    assert waiting.exit_code == 0, waiting.output
    assert one_json(waiting)["status"] == "deferred"
    assert parent.exit_code == 1
    assert parent.stderr.startswith("error: job parent is unknown"), parent.stderr
