"""Real worker and CLI processes for end-to-end tests, always cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.services import ROOT

WORKER_SETTINGS = "worker.main.WorkerSettings"


def service_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment a worker or the CLI gets: the suite's database and Redis space."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBS_")}
    # Child processes may cache bytecode: each would otherwise recompile SQLAlchemy.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PYTHONUNBUFFERED="1",
        JOBS_SHUTDOWN_GRACE="5",
    )
    env.update(extra)
    return env


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 15) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def start_worker(env: Mapping[str, str], *, ready_redis_url: str | None = None) -> WorkerProcess:
    """``python -m arq worker.main.WorkerSettings``; waits until its health key appears."""
    with tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False) as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "arq", WORKER_SETTINGS],
            cwd=ROOT,
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process, Path(log_file.name))
    _wait_ready(worker, ready_redis_url or env["REDIS_URL"])
    return worker


def _wait_ready(worker: WorkerProcess, redis_url: str, timeout: float = 30) -> None:
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{worker.log}")
            if "worker ready" in worker.log:
                return
            time.sleep(0.1)
    finally:
        client.close()
    worker.stop()
    raise RuntimeError(f"worker not ready after {timeout}s:\n{worker.log}")


@contextmanager
def running_worker(env: Mapping[str, str]) -> Iterator[WorkerProcess]:
    worker = start_worker(env)
    try:
        yield worker
    finally:
        worker.stop()


def run_cli(
    args: list[str], env: Mapping[str, str], *, timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The ``jobs`` console script as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )
