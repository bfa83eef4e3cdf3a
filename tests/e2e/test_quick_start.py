"""The README's Quick start, replayed as written as far as it runs here: its ```bash blocks
read from the README itself, each command run in this directory on the suite's services.

What cannot run here is left out, and said so: `docker compose` (no Docker) and `createdb`
(the suite made the database); the `export` lines are replayed as the environment, with
the suite's database and Redis in place of theirs. The worker command is started in the
background, as its own terminal would, and `--count 100000` is cut to 2,000 so that the
replay stays cheap; every other command runs word for word and must exit 0.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.readme import bash_blocks, section
from worker.testing.processes import READY_LINE, ROOT, launch_worker, wait_for_log

pytestmark = pytest.mark.e2e

NOT_HERE = ("docker ", "createdb ")
SCALED = ("--count 100000", "--count 2000")
BIN = Path(sys.executable).parent  # this environment's console scripts: what `uv run` runs


def quick_start() -> list[str]:
    lines = []
    for block in bash_blocks(section("Quick start with real services")):
        lines += [line.strip() for line in block.splitlines() if line.strip()]
    return lines


def test_the_quick_start_is_all_there():
    commands = quick_start()
    assert "uv run alembic upgrade head" in commands
    assert "uv run arq worker.main.WorkerSettings" in commands
    assert sum(c.startswith("uv run dbjobs ") for c in commands) >= 10
    assert {c.split("=")[0] for c in commands if c.startswith("export ")} == {
        "export DATABASE_URL",
        "export REDIS_URL",
    }


def _argv(command: str) -> list[str]:
    words = shlex.split(command.replace(*SCALED))
    assert words[:2] == ["uv", "run"], command  # every command of the Quick start is uv run
    return [str(BIN / words[2]), *words[3:]]


def test_the_quick_start_runs_as_written(env: dict[str, str], tmp_path: Path):
    # The README's URLs name no driver: the replay does the same.
    replay = {**env, "DATABASE_URL": env["DATABASE_URL"].replace("+asyncpg", "")}
    worker = None
    try:
        for command in quick_start():
            if command.startswith(NOT_HERE) or command.startswith("export "):
                continue
            if "arq worker.main.WorkerSettings" in command:
                assert _argv(command)[1:] == ["worker.main.WorkerSettings"]
                worker = launch_worker(replay, tmp_path / "worker.log")
                wait_for_log(worker, READY_LINE, timeout=60)
                continue
            done = subprocess.run(
                _argv(command), cwd=ROOT, env=replay, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        shown = done.stdout
        assert "baseline" in shown
        assert "completed" in shown
    finally:
        if worker is not None:
            worker.stop()
    assert os.path.exists(ROOT / "examples" / "points.jsonl")
