"""``dbjobs enqueue record-metrics RUN --file F --wait`` with a worker running: points/s from
the command's start to its exit, every point committed, and where the command's time went.

The bench watches Redis while the command runs: the first batch job appearing ends the
reading and checking of the file, the last one ends the enqueueing, the rest is waiting
for the worker. ``os.wait4`` gives the command's own CPU time and peak RSS.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from arq.constants import job_key_prefix, result_key_prefix

from bench import cpu
from bench.context import Bench
from bench.cpu import CpuUse
from bench.processes import running_workers
from bench.producers import jobs_command
from bench.queued import expect_rows
from bench.services import truncate_tables
from worker.testing.processes import ROOT, WORKER_SETTINGS

BATCH_POINTS = 1000
POLL_SECONDS = 0.01


@dataclass(frozen=True)
class FileRun:
    per_second: float
    seconds: float
    checked: float  # start until the first batch job is in Redis: start-up, read, check
    enqueued: float  # until the last batch job is in Redis
    cpu: float  # the command's own user + system CPU seconds
    peak_rss_mb: float
    others: CpuUse  # the worker's, PostgreSQL's and Redis's CPU seconds meanwhile


def points_file(count: int) -> str:
    """A JSON lines file of ``count`` points, values as wide as a real loss curve's."""
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as points:
        for start in range(0, count, 10_000):
            steps = range(start, min(start + 10_000, count))
            lines = (orjson.dumps({"name": "loss", "step": s, "value": 1 / (s + 1)}) for s in steps)
            points.write(b"\n".join(lines) + b"\n")
    return points.name


async def file_runs(bench: Bench) -> list[FileRun]:
    count = bench.sizes.file_points
    path = points_file(count)
    runs = []
    try:
        with running_workers(bench.env(), 1, WORKER_SETTINGS) as workers:
            for number in range(bench.runs):
                await truncate_tables(bench.services)
                run_id = await bench.new_run()
                job_id = f"bench-file-{number}-{os.urandom(4).hex()}"
                args = ["enqueue", "record-metrics", str(run_id), "--file", path]
                args += ["--wait", "--json", "--job-id", job_id]
                before = await cpu.sample(bench, workers)
                run = await timed_command(bench, args, job_id, -(-count // BATCH_POINTS))
                used = (await cpu.sample(bench, workers)).minus(before)
                runs.append(replace(run, others=used))
                await expect_rows(bench, "metrics", count)
    finally:
        os.unlink(path)
    return runs


async def timed_command(bench: Bench, args: list[str], job_id: str, jobs: int) -> FileRun:
    """Run the command and watch its first and last batch jobs arrive in Redis."""
    started = time.perf_counter()
    pid: list[int] = []
    ended = asyncio.ensure_future(asyncio.to_thread(_measured, args, bench.env(), pid))
    peak = asyncio.ensure_future(_peak_rss_mb(pid, ended))
    first = await _appeared(bench, f"{job_id}:0", ended)
    last = await _appeared(bench, f"{job_id}:{jobs - 1}", ended)
    usage = await ended
    seconds = time.perf_counter() - started
    return FileRun(
        per_second=bench.sizes.file_points / seconds,
        seconds=seconds,
        checked=first - started,
        enqueued=last - started,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=await peak,
        others=CpuUse(0, 0, 0),
    )


def _measured(args: list[str], env: dict[str, str], pid: list[int]) -> resource.struct_rusage:
    """``jobs ARGS`` run to its end (its pid put in ``pid``); the CPU the kernel counted."""
    with tempfile.TemporaryFile() as err:
        command = subprocess.Popen(
            [*jobs_command(), *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        pid.append(command.pid)
        _, status, usage = os.wait4(command.pid, 0)
        command.returncode = os.waitstatus_to_exitcode(status)
        if command.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"jobs {' '.join(args)} failed:\n{err.read().decode()[-2000:]}")
    return usage


async def _peak_rss_mb(pid: list[int], ended: asyncio.Future[Any]) -> float:
    """The command's VmHWM, read until it exits. Not its ru_maxrss: that counts the memory
    of the bench process it was forked from, often larger than its own."""
    peak = 0.0
    while not ended.done():
        status = Path(f"/proc/{pid[0]}/status") if pid else None
        try:
            lines = status.read_text().splitlines() if status else []
        except OSError:
            lines = []
        for line in lines:
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) / 1024)
        await asyncio.sleep(POLL_SECONDS)
    return peak


async def _appeared(bench: Bench, job_id: str, ended: asyncio.Future[Any]) -> float:
    """When the job was first seen in Redis (queued, or already done)."""
    keys = (job_key_prefix + job_id, result_key_prefix + job_id)
    while not await bench.pool.exists(*keys):
        if ended.done():
            return time.perf_counter()
        await asyncio.sleep(POLL_SECONDS)
    return time.perf_counter()
