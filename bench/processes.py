"""Real worker processes (``python -m arq ...``) and what /proc says about them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.services import ROOT, BenchServices

WORKER_SETTINGS = "worker.main.WorkerSettings"
NOOP_SETTINGS = "bench.noop.WorkerSettings"
PROFILED_SETTINGS = "bench.profiled.WorkerSettings"
READY_LINE = "worker ready"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def worker_env(services: BenchServices, **settings: str) -> dict[str, str]:
    """The environment of a worker: the bench's services, and ``JOBS_*`` settings given.

    Other ``JOBS_*`` variables pass through, so ``JOBS_MAX_JOBS=20 python -m bench`` measures
    that setting (the in-process baselines read the same variables).
    """
    env = dict(os.environ)
    env.update(
        DATABASE_URL=services.database_url,
        REDIS_URL=services.redis_url,
        PYTHONUNBUFFERED="1",
        JOBS_SHUTDOWN_GRACE="5",
    )
    env.update({f"JOBS_{name.upper()}": value for name, value in settings.items()})
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

    def status_kb(self, field: str) -> int:
        """A ``VmHWM``/``VmRSS`` line of /proc/<pid>/status, in kB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise KeyError(field)

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self, timeout: float = 20) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log_path.unlink(missing_ok=True)
        return self.process.returncode


def start_worker(
    env: Mapping[str, str],
    settings_path: str = WORKER_SETTINGS,
    *,
    python_args: tuple[str, ...] = (),
) -> WorkerProcess:
    """Start ``python [python_args] -m arq settings_path`` and wait until it says it is ready."""
    with tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [sys.executable, *python_args, "-m", "arq", settings_path],
            cwd=ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process, Path(log.name))
    try:
        _wait_ready(worker)
    except BaseException:
        worker.stop()
        raise
    return worker


def _wait_ready(worker: WorkerProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{worker.log}")
        if READY_LINE in worker.log:
            return
        time.sleep(0.05)
    raise RuntimeError(f"worker not ready after {timeout}s:\n{worker.log}")


@contextmanager
def running_workers(
    env: Mapping[str, str], count: int = 1, settings_path: str = WORKER_SETTINGS
) -> Iterator[list[WorkerProcess]]:
    """``count`` worker processes, always stopped on the way out."""
    with ExitStack() as stack:
        workers = []
        for _ in range(count):
            worker = start_worker(env, settings_path)
            stack.callback(worker.stop)
            workers.append(worker)
        yield workers
