"""Real worker processes (``python -m arq ...``) and what /proc says about them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.services import BenchServices
from worker.testing import processes
from worker.testing.processes import WORKER_SETTINGS, WorkerProcess

NOOP_SETTINGS = "bench.noop.WorkerSettings"
PROFILED_SETTINGS = "bench.profiled.WorkerSettings"
LOOP_LAG_SETTINGS = "bench.loop_lag.WorkerSettings"


def worker_env(services: BenchServices, **settings: str) -> dict[str, str]:
    """The environment of a worker: the bench's services, and ``JOBS_*`` settings given.

    Other ``JOBS_*`` variables pass through, so ``JOBS_MAX_JOBS=20 python -m bench`` measures
    that setting (the in-process baselines read the same variables).
    """
    env = dict(os.environ)
    # Child processes may cache bytecode: each would otherwise recompile SQLAlchemy.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        DATABASE_URL=services.database_url,
        REDIS_URL=services.redis_url,
        PYTHONUNBUFFERED="1",
        JOBS_SHUTDOWN_GRACE="5",
    )
    env.update({f"JOBS_{name.upper()}": value for name, value in settings.items()})
    return env


def status_kb(worker: WorkerProcess, field: str) -> int:
    """A ``VmHWM``/``VmRSS`` line of /proc/<pid>/status, in kB."""
    for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def start_worker(env: Mapping[str, str], settings_path: str = WORKER_SETTINGS) -> WorkerProcess:
    """Start ``python -m arq settings_path`` and wait until it says it is ready."""
    fd, log_path = tempfile.mkstemp(prefix="bench-worker-", suffix=".log")
    os.close(fd)
    return processes.start_worker(env, Path(log_path), settings_path, timeout=60)


def stop_worker(worker: WorkerProcess) -> int | None:
    """Stop it (SIGTERM, then SIGKILL after 20 s) and remove its log."""
    code = worker.stop(timeout=20)
    worker.log_path.unlink(missing_ok=True)
    return code


@contextmanager
def running_workers(
    env: Mapping[str, str], count: int = 1, settings_path: str = WORKER_SETTINGS
) -> Iterator[list[WorkerProcess]]:
    """``count`` worker processes, always stopped on the way out."""
    with ExitStack() as stack:
        workers = []
        for _ in range(count):
            worker = start_worker(env, settings_path)
            stack.callback(stop_worker, worker)
            workers.append(worker)
        yield workers
