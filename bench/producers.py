"""Producers: enqueue rates from Python and from the ``jobs`` CLI, and ``dbjobs --help``."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench import measure
from bench.context import Bench
from bench.measure import rate
from bench.queued import metric_payloads
from bench.services import reset_redis
from worker.ops.enqueue import enqueue_many
from worker.testing.processes import ROOT

Enqueue = Callable[[Bench, Sequence[dict[str, Any]]], Awaitable[None]]


def cli_available() -> bool:
    return importlib.util.find_spec("worker.cli") is not None


async def _bulk(bench: Bench, payloads: Sequence[dict[str, Any]]) -> None:
    await enqueue_many(bench.pool, "record_metric", payloads)


async def _one_by_one(bench: Bench, payloads: Sequence[dict[str, Any]]) -> None:
    for payload in payloads:
        await bench.pool.enqueue_job("record_metric", payload)


async def enqueue_rate(bench: Bench, how: Enqueue, count: int) -> list[float]:
    """Jobs/s of ``how``; the queue is emptied after each run (no worker runs)."""
    values = []
    for _ in range(bench.runs):
        await reset_redis(bench.services)
        payloads = metric_payloads(1, count)
        started = time.perf_counter()
        await how(bench, payloads)
        seconds = time.perf_counter() - started
        queued = await measure.queued(bench.pool, bench.queue)
        if queued != count:
            raise RuntimeError(f"{queued} jobs queued, expected {count}")
        values.append(rate(count, seconds))
    await reset_redis(bench.services)
    return values


async def python_bulk_rate(bench: Bench) -> list[float]:
    return await enqueue_rate(bench, _bulk, bench.sizes.enqueue_jobs)


async def python_one_by_one_rate(bench: Bench) -> list[float]:
    return await enqueue_rate(bench, _one_by_one, bench.sizes.enqueue_one_by_one)


def _points_file(count: int) -> str:
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as points:
        for step in range(count):
            points.write(orjson.dumps({"name": "loss", "step": step, "value": 0.5}) + b"\n")
    return points.name


async def cli_enqueue_rate(bench: Bench, count: int, batch_size: int) -> list[float]:
    """Points/s of ``dbjobs enqueue record-metrics RUN --file F --batch-size B`` (jobs/s when
    B is 1), process start to exit: reading and validating the file is part of it."""
    jobs = -(-count // batch_size)
    path = _points_file(count)
    values = []
    try:
        for _ in range(bench.runs):
            await reset_redis(bench.services)
            args = ["enqueue", "record-metrics", "1", "--file", path]
            seconds = run_cli([*args, "--batch-size", str(batch_size)], bench.env())
            queued = await measure.queued(bench.pool, bench.queue)
            if queued != jobs:
                raise RuntimeError(f"CLI queued {queued} jobs, expected {jobs}")
            values.append(rate(count, seconds))
    finally:
        os.unlink(path)
        await reset_redis(bench.services)
    return values


def jobs_command() -> list[str]:
    """The ``jobs`` console script of this environment, as a user runs it."""
    script = Path(sys.executable).with_name("jobs")
    return [str(script)] if script.exists() else [sys.executable, "-m", "worker.cli"]


def run_cli(args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of ``jobs ARGS``, from process start to exit."""
    started = time.perf_counter()
    done = subprocess.run(
        [*jobs_command(), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"jobs {' '.join(args)} failed:\n{done.stderr.decode()[-2000:]}")
    return seconds


def cli_help_seconds(bench: Bench) -> list[float]:
    runs = max(bench.runs, 3)
    run_cli(["--help"], bench.env())  # warms the file cache (and .pyc files, if written)
    return [run_cli(["--help"], bench.env()) for _ in range(runs)]
