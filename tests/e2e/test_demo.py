"""``dbjobs demo`` end to end, as a newcomer runs it: no services, no .env, any directory."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from worker.demo import run
from worker.demo.scenario import Scenario

pytestmark = pytest.mark.e2e

DEMO_TIMEOUT = 180


def _environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL"} and not name.startswith("JOBS_")
    }
    return {**env, "PYTHONUNBUFFERED": "1"}


def _run_demo(cwd: Path, profiles: int) -> subprocess.CompletedProcess[str]:
    """``dbjobs demo`` (the console script runs ``worker.cli``) in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", "demo", "--profiles", str(profiles)],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )


def _counts(database: Path) -> dict[str, object]:
    with contextlib.closing(sqlite3.connect(database)) as connection:

        def one(sql: str) -> object:
            return connection.execute(sql).fetchone()[0]

        return {
            "profiles": one("SELECT count(*) FROM profiles"),
            "updated": one("SELECT count(*) FROM profiles WHERE version = 2"),
            "metrics": one("SELECT count(*) FROM metrics"),
            "run": one("SELECT status FROM runs"),
            "experiment": one("SELECT status FROM experiments"),
            "failed jobs": one("SELECT count(*) FROM job_records WHERE status = 'failed'"),
        }


def test_the_demo_runs_in_process_and_again(tmp_path: Path) -> None:
    expected = {
        "profiles": 500,
        "updated": 1,
        "metrics": 5_000,
        "run": "completed",
        "experiment": "completed",
        "failed jobs": 0,
    }
    for _ in range(2):  # a second run starts from a fresh demo.db
        finished = _run_demo(tmp_path, profiles=500)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        for heading in ("Jobs run", "Rows written", "Time taken", "Demo complete"):
            assert heading in finished.stdout
        assert _counts(tmp_path / "demo.db") == expected


def test_one_service_url_alone_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert run(profiles=10) == 2
    assert "REDIS_URL is set but DATABASE_URL is not" in capsys.readouterr().err
    assert not (tmp_path / "demo.db").exists()


def test_a_failing_job_ends_the_demo_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def stale_update(scenario: Scenario, profile_id: int) -> None:
        payload = {"profile_id": profile_id, "changes": {"bio": "x"}, "expected_version": 9}
        await scenario.call("update_profile", payload)

    for name in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Scenario, "update_profile", stale_update)
    code = run(profiles=200, database_file=tmp_path / "failing.db")
    error = " ".join(capsys.readouterr().err.split())  # Rich wraps long lines
    assert code == 1
    assert "job update_profile failed: StaleVersion: profile 1 is at version 1" in error


def test_the_demo_runs_on_live_services_beside_a_running_worker(
    env: dict[str, str], worker: object, tmp_path: Path
) -> None:
    """The state the Quick start leaves: services in the environment and a worker serving
    the queue. The demo keeps its jobs on a queue of its own and finishes."""
    finished = subprocess.run(
        [sys.executable, "-m", "worker.cli", "demo", "--profiles", "200"],
        cwd=tmp_path,
        env={**env, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "not in queue" not in finished.stdout + finished.stderr
    assert "Demo complete" in finished.stdout
