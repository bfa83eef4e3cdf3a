"""Real worker and CLI processes, always cleaned up: for end-to-end tests and the bench.

A development tool: processes run from the project's root (``ROOT``), the way a developer
runs them from a checkout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: worker/ and domain/ are in it
WORKER_SETTINGS = "worker.main.WorkerSettings"
READY_LINE = "worker ready"  # what on_startup logs once the worker serves


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
    def pid(self) -> int:
        return self.process.pid

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


def launch_worker(
    env: Mapping[str, str], log_path: Path, settings: str = WORKER_SETTINGS
) -> WorkerProcess:
    """``python -m arq settings``, its output in ``log_path``; no waiting."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "arq", settings],
            cwd=ROOT,
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(process, log_path)


def wait_for_log(worker: WorkerProcess, needle: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in worker.log:
            return
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited ({worker.process.returncode}):\n{worker.log}")
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not in the worker log after {timeout}s:\n{worker.log}")


def start_worker(
    env: Mapping[str, str], log_path: Path, settings: str = WORKER_SETTINGS, *, timeout: float = 30
) -> WorkerProcess:
    """A worker process that has said it is ready; stopped again if it never does."""
    worker = launch_worker(env, log_path, settings)
    try:
        wait_for_log(worker, READY_LINE, timeout=timeout)
    except BaseException:
        worker.stop()
        raise
    return worker


@contextmanager
def running_worker(env: Mapping[str, str], log_path: Path) -> Iterator[WorkerProcess]:
    worker = start_worker(env, log_path)
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
