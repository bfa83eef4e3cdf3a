"""The operations console's pages and API at scale: every dashboard page and the overview's
API call, timed in-process (the whole app: routing, queries, templates; no network) on the
history seeded as ``bench.history`` seeds it (1,000,000 records by default).

The jobs list is timed on its first page, with each filter, and on a page near the oldest
record (a keyset cursor there costs what the first page does). Each call is timed
``TIMED_CALLS`` times after ``WARMUP_CALLS``; the row gives the median in milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx

from bench.context import Bench
from bench.history import DAYS, Seeded, seed
from bench.measure import Row
from bench.services import truncate_tables
from domain.views import JobSummary
from worker.web.app import create_app
from worker.web.paging import cursor_of

WARMUP_CALLS = 2
TIMED_CALLS = 9
TARGET_MS = 200.0  # a page an operator clicks through should feel instant


async def console(bench: Bench) -> list[Row]:
    await truncate_tables(bench.services)
    try:
        seeded = await seed(bench, bench.sizes.read_rows)
        async with console_client(bench) as client:
            deep = _deep_cursor(seeded)
            return [
                await _timed(client, name, path, seeded.rows)
                for name, path in _pages(seeded, deep).items()
            ]
    finally:
        await truncate_tables(bench.services)


@asynccontextmanager
async def console_client(bench: Bench) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the whole console app, in this process, on the bench's services."""
    app = create_app(bench.settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        local = "http://localhost"  # a name the console answers to
        async with httpx.AsyncClient(transport=transport, base_url=local) as client:
            yield client


def _deep_cursor(seeded: Seeded) -> str:
    """A cursor ten seconds after the oldest seeded job: its page is the history's last."""
    finished = seeded.now - timedelta(days=DAYS) + timedelta(seconds=10)
    last = JobSummary(
        job_id="~",
        function="f",
        state="succeeded",
        parent_id=None,
        tries=1,
        error_type=None,
        error_message=None,
        finished_at=finished,
    )
    return cursor_of(last)


def _pages(seeded: Seeded, deep: str) -> dict[str, str]:
    job = seeded.job_ids[len(seeded.job_ids) // 2]
    return {
        "overview page": "/",
        "overview, live fragment": "/fragments/overview",
        "GET /api/queue": "/api/queue",
        "jobs page, first": "/jobs",
        "jobs page, state=failed": "/jobs?state=failed",
        f"jobs page, function={seeded.rare_function} (rarest)": (
            f"/jobs?function={seeded.rare_function}"
        ),
        "jobs page, near the oldest (keyset cursor)": f"/jobs?before={deep}",
        "job page": f"/jobs/{job}",
        f"job page, submission of {seeded.children} jobs": f"/jobs/{seeded.parent}",
        "failed page (unhandled)": "/failed",
        "GET /api/jobs?limit=50": "/api/jobs?limit=50",
        "workers page": "/workers",
        "experiments page": "/experiments",
    }


async def _timed(client: httpx.AsyncClient, name: str, path: str, rows: int) -> Row:
    times: list[float] = []
    for call in range(WARMUP_CALLS + TIMED_CALLS):
        started = time.perf_counter()
        response = await client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
        if call >= WARMUP_CALLS:
            times.append(elapsed)
    return Row(
        f"console: {name}",
        "ms",
        times,
        target=f"≤ {TARGET_MS:.0f} ms",
        check=_within(TARGET_MS),
        note=f"{rows:,} job records; {len(response.content):,} bytes",
    )


def _within(limit: float) -> Callable[[float], bool]:
    return lambda median: median <= limit
