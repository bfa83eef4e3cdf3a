"""The console's run page right after an upload, before any ANALYZE: ``GET /runs/{id}`` and
the chart's ``GET /api/metrics/history`` on a run of a million points whose statistics are
still the empty table's (a server without autovacuum reads an upload so until someone
analyzes it). Timed in-process as ``bench.console`` times the console: routing, queries,
template, JSON; no network. The first call of each is the one a user makes as the upload
ends (its pages not yet read since: hint bits unset, the visibility map empty); the target
holds for every call, the first included.
"""

from __future__ import annotations

import time

import httpx

from bench.measure import Row
from domain.metric_queries import DEFAULT_BUCKETS

TIMED_CALLS = 7
TARGET_MS = 1000.0


def run_page_paths(run_id: int, name: str) -> dict[str, str]:
    """The page, and the history its chart asks for (the default buckets: a wide window)."""
    history = f"/api/metrics/history?run_ids={run_id}&name={name}&buckets={DEFAULT_BUCKETS}"
    return {"GET /runs/{id}": f"/runs/{run_id}", "GET /api/metrics/history": history}


async def warm_up(client: httpx.AsyncClient, run_id: int, name: str) -> None:
    """The app's first calls (templates compiled, connections opened), on the run while it
    is still empty, so that the timed first call pays for the data only."""
    for path in run_page_paths(run_id, name).values():
        (await client.get(path)).raise_for_status()


async def run_page_rows(
    client: httpx.AsyncClient, run_id: int, name: str, points: int
) -> list[Row]:
    return [
        await _timed(client, f"console: {label}, {points:,} points, right after upload", path)
        for label, path in run_page_paths(run_id, name).items()
    ]


async def _timed(client: httpx.AsyncClient, label: str, path: str) -> Row:
    times: list[float] = []
    for _ in range(TIMED_CALLS):
        started = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return Row(
        f"  {label}, no ANALYZE",
        "ms",
        times,
        target=f"≤ {TARGET_MS:,.0f} ms, first call too",
        check=lambda _median: max(times) <= TARGET_MS,
        note=f"first call {times[0]:,.0f} ms; {len(response.content):,} bytes; "
        f"median of {len(times)}",
    )
