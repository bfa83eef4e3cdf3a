"""Unusable settings end a command in one line, never a traceback.

A ``REDIS_URL`` or ``DATABASE_URL`` that cannot be used is bad input (exit code 2), its
password never shown.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli.conftest import closed_port
from tests.services import ROOT, RedisSpace
from worker.cli.connect import database_address, redis_address, scrub
from worker.config import Settings

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


def refused_as_bad_setting(result: subprocess.CompletedProcess[str], setting: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {setting} is not a"), lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize("url", BAD_REDIS_URLS)
def test_an_unusable_redis_url_is_bad_input(url):
    unused_database = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/dbjobs"
    result = jobs("status", "x", redis_url=url, database_url=unused_database)
    refused_as_bad_setting(result, "REDIS_URL")


@pytest.mark.parametrize("url", BAD_DATABASE_URLS)
def test_an_unusable_database_url_is_bad_input(url, clean_redis: RedisSpace):
    # Redis answers first (the job is unknown there), then the job history needs the database.
    result = jobs("status", "x", redis_url=clean_redis.url, database_url=url)
    refused_as_bad_setting(result, "DATABASE_URL")


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
