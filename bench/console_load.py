"""The console under the heaviest reads it allows, as a real ``dbjobs serve`` process: its
peak resident memory (``VmHWM``), and how fast ``GET /api/queue`` answers meanwhile.

Seeds 100 runs of 10,000 points (1,000,000), then asks ``/api/metrics/history`` for the
largest answer one read may give, in both shapes (100 runs of the fewest buckets, and
two runs at full resolution): one at a time, four at once, and ``FLOOD`` at once, while
another client asks for ``/api/queue`` every ``PROBE_EVERY`` seconds. Answers are read
and dropped as they come, so that the bench's own memory stays out of the way.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from subprocess import PIPE
from typing import Any

import asyncpg
import httpx

from bench.context import Bench
from bench.measure import Row
from bench.processes import status_kb
from bench.producers import ROOT, jobs_command
from bench.services import truncate_tables
from domain.metric_queries import MAX_BUCKETS, MAX_COMPARED_RUNS, MAX_HISTORY_BUCKETS
from worker.testing.processes import WorkerProcess

RUNS = MAX_COMPARED_RUNS
POINTS = MAX_BUCKETS  # per run: every bucket of the finest history holds a point
FLOOD = 300
PROBE_EVERY = 0.05
COLUMNS = ["run_id", "name", "step", "value", "recorded_at"]
Params = dict[str, Any]


async def console_load(bench: Bench) -> list[Row]:
    await truncate_tables(bench.services)
    try:
        run_ids = await _seed(bench)
        with _serving(bench) as (url, console):
            return await _measure(url, console, run_ids)
    finally:
        await truncate_tables(bench.services)


async def _measure(url: str, console: WorkerProcess, run_ids: list[int]) -> list[Row]:
    limits = httpx.Limits(max_connections=FLOOD + 10, max_keepalive_connections=FLOOD + 10)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        await _read(client, _history(run_ids[:1], 10))
        idle = status_kb(console, "VmRSS") / 1024
        many = _history(run_ids, MAX_HISTORY_BUCKETS // len(run_ids))
        fine = _history(run_ids[:2], MAX_HISTORY_BUCKETS // 2)
        rows = [await _alone(client, many), await _alone(client, fine)]
        rows.append(await _at_once(client, many, 4))
        flood, probes = await _flooded(client, url, many)
    peak = status_kb(console, "VmHWM") / 1024
    return [
        *rows,
        flood,
        Row(
            f"GET /api/queue during the {FLOOD} reads",
            "ms",
            [ms for ms, _ in probes],
            target="≤ 200 ms",
            check=lambda median: median <= 200,
            note=f"{len(probes)} calls ({_statuses(s for _, s in probes)}), the slowest "
            f"{max(ms for ms, _ in probes):,.0f} ms",
        ),
        Row(
            "console peak RSS (VmHWM), all of the above",
            "MB",
            [peak],
            note=f"idle {idle:,.0f} MB",
        ),
    ]


def _history(run_ids: list[int], buckets: int) -> Params:
    return {"name": "loss", "run_ids": run_ids, "buckets": buckets}


def _shape(params: Params) -> str:
    return f"{len(params['run_ids'])} runs × {params['buckets']:,} buckets"


async def _read(client: httpx.AsyncClient, params: Params) -> tuple[int, int]:
    """The status and size of one history answer, read and dropped chunk by chunk."""
    async with client.stream("GET", "/api/metrics/history", params=params) as response:
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
        return response.status_code, size


async def _alone(client: httpx.AsyncClient, params: Params) -> Row:
    started = time.perf_counter()
    status, size = await _read(client, params)
    elapsed = (time.perf_counter() - started) * 1000
    return Row(f"history, {_shape(params)}, alone", "ms", [elapsed], note=_said(status, size))


async def _at_once(client: httpx.AsyncClient, params: Params, count: int) -> Row:
    started = time.perf_counter()
    answers = await asyncio.gather(*(_read(client, params) for _ in range(count)))
    elapsed = time.perf_counter() - started
    return Row(
        f"history, {_shape(params)}, {count} at once",
        "s",
        [elapsed],
        note=_statuses(status for status, _ in answers),
    )


async def _flooded(client: httpx.AsyncClient, url: str, params: Params) -> tuple[Row, list[float]]:
    """FLOOD reads at once, and the light reads of a prober in a process of its own (this
    one's event loop, busy with the flood, would delay the answers it times)."""
    code = f"from bench.console_load import probe; probe({url!r})"
    prober = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=ROOT, stdin=PIPE, stdout=PIPE
    )
    assert prober.stdin is not None
    assert prober.stdout is not None
    first = await prober.stdout.readline()  # it is up: the flood starts
    started = time.perf_counter()
    answers = await asyncio.gather(*(_read(client, params) for _ in range(FLOOD)))
    elapsed = time.perf_counter() - started
    prober.stdin.close()  # it stops: one line per call it made, "milliseconds status"
    lines = (first + await prober.stdout.read()).decode().splitlines()
    await prober.wait()
    statuses = _statuses(status for status, _ in answers)
    row = Row(f"history, {_shape(params)}, {FLOOD} at once", "s", [elapsed], note=statuses)
    return row, [(float(ms), int(status)) for ms, status in map(str.split, lines)]


def probe(url: str) -> None:
    """GET /api/queue every PROBE_EVERY seconds, printing each one's milliseconds, until
    stdin closes."""
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            started = time.perf_counter()
            status = client.get("/api/queue").status_code
            print(f"{(time.perf_counter() - started) * 1000:.1f} {status}", flush=True)
            stop.wait(PROBE_EVERY)


def _said(status: int, size: int) -> str:
    return f"HTTP {status}, {size / 1e6:,.1f} MB"


def _statuses(statuses: Iterator[int] | Any) -> str:
    counted = Counter(statuses)
    return ", ".join(f"{count} × HTTP {status}" for status, count in sorted(counted.items()))


async def _seed(bench: Bench) -> list[int]:
    """One experiment of RUNS runs, POINTS points of 'loss' each, written with COPY."""
    connection = await asyncpg.connect(bench.services.dsn)
    try:
        owner = await connection.fetchval(
            "INSERT INTO profiles (username, email, full_name, bio, created_at, updated_at,"
            " version) VALUES ('load', 'load@example.com', 'Load', '', now(), now(), 1)"
            " RETURNING id"
        )
        experiment = await connection.fetchval(
            "INSERT INTO experiments (owner_id, name, description, status, created_at)"
            " VALUES ($1, 'load', '', 'running', now()) RETURNING id",
            owner,
        )
        run_ids = [
            await connection.fetchval(
                "INSERT INTO runs (experiment_id, status) VALUES ($1, 'running') RETURNING id",
                experiment,
            )
            for _ in range(RUNS)
        ]
        now = datetime.now(UTC)
        for run_id in run_ids:
            records = [
                (run_id, "loss", step, math.exp(-step / 2000) + math.sin(step) / 50, now)
                for step in range(POINTS)
            ]
            await connection.copy_records_to_table(
                "metrics",
                records=records,
                columns=["run_id", "name", "step", "value", "recorded_at"],
            )
        await connection.execute("VACUUM ANALYZE metrics")
        return run_ids
    finally:
        await connection.close()


@contextmanager
def _serving(bench: Bench) -> Iterator[tuple[str, WorkerProcess]]:
    """``dbjobs serve`` on a free port, until it answers; stopped on the way out."""
    port = _free_port()
    fd, log_name = tempfile.mkstemp(prefix="bench-console-", suffix=".log")
    os.close(fd)
    log_path = Path(log_name)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*jobs_command(), "serve", "--port", str(port)],
            cwd=ROOT,
            env=bench.env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    console = WorkerProcess(process, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, console)
        yield url, console
    finally:
        console.stop(timeout=20)
        log_path.unlink(missing_ok=True)


def _wait_until_up(url: str, console: WorkerProcess) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if console.process.poll() is not None:
            raise RuntimeError(f"dbjobs serve exited:\n{console.log}")
        try:
            if httpx.get(f"{url}/api/queue", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"dbjobs serve did not answer within 60 s:\n{console.log}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
