"""Workers that fall behind (issue 20, item 6): late after one missed heartbeat, lost after
three, in red on the Workers page and the overview until an operator dismisses them; the
jobs they ran shown as orphaned, never silently gone. Beats are written as a worker writes
them (``WorkerBeat``), dated in the past, so no test waits for a clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from playwright.async_api import expect

from domain.db import utcnow
from worker.bootstrap import open_pool
from worker.ops.queue_prometheus import read_exposition
from worker.ops.queue_state import lease_value
from worker.ops.workers import READY, WorkerBeat, index_key, worker_key
from worker.settings import Settings

WAIT_MS = 10_000


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await open_pool(settings)
    yield pool
    await pool.aclose()


async def beat(
    pool: ArqRedis, queue: str, worker_id: str, *, seconds_ago: float, every: float = 5.0
) -> None:
    """A beat written ``seconds_ago`` by a worker beating ``every`` seconds, its key there."""
    at = utcnow() - timedelta(seconds=seconds_ago)
    written = WorkerBeat(worker_id, queue, at - timedelta(minutes=5), at, 1, READY, every)
    await pool.set(worker_key(queue, worker_id), written.to_json(), px=60_000)
    await pool.zadd(index_key(queue), {worker_id: int(at.timestamp() * 1000)})


async def lost(pool: ArqRedis, queue: str, worker_id: str, *, seconds_ago: float) -> None:
    """A worker whose key expired: only its index entry is left."""
    at_ms = timestamp_ms() - int(seconds_ago * 1000)
    await pool.zadd(index_key(queue), {worker_id: at_ms})


async def test_late_and_lost_workers_are_red_until_dismissed(page, served, pool, settings):
    queue = settings.queue_name
    await beat(pool, queue, "host:1", seconds_ago=0, every=600)  # never late in this test
    await beat(pool, queue, "host:2", seconds_ago=8)  # one beat missed
    await lost(pool, queue, "host:3", seconds_ago=20)
    # A job host:2 was running: orphaned while its worker is late.
    await pool.zadd(queue, {"orphan:1": timestamp_ms() - 30_000})
    await pool.set(in_progress_key_prefix + "orphan:1", lease_value("host:2"), px=60_000)

    await page.goto("/workers")
    rows = page.locator("#worker-table tr.worker")
    await expect(rows).to_have_count(3)
    await expect(page.locator("tr.worker.ready")).to_contain_text("host:1")
    await expect(page.locator("tr.worker.late")).to_contain_text("host:2")
    await expect(page.locator("tr.worker.lost")).to_contain_text("host:3")
    red = await page.locator("tr.worker.lost .state").evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert red == "rgb(179, 38, 30)"

    await page.goto("/")
    await expect(page.locator("#workers")).to_have_text("1")
    await expect(page.locator("#workers-fallen")).to_have_text("2 late or lost")
    orphan = page.locator("tr.orphaned")
    await expect(orphan).to_contain_text("orphan:1")
    await expect(page.locator("#orphaned-note")).to_contain_text("returns to the queue")

    # /metrics and the API tell the same roster.
    gauges = (await read_exposition(pool, queue)).decode()
    assert "dbjobs_workers_alive 1.0" in gauges
    assert "dbjobs_workers_late 1.0" in gauges
    assert "dbjobs_workers_lost 1.0" in gauges
    listed = await page.request.get("/api/workers")
    assert [(w["worker_id"], w["state"]) for w in await listed.json()] == [
        ("host:1", "ready"),
        ("host:2", "late"),
        ("host:3", "lost"),
    ]

    await page.goto("/workers")
    await page.locator("tr.worker.lost button", has_text="Dismiss").click()
    await expect(page).to_have_url(f"{served.url}/workers")
    await expect(rows).to_have_count(2)
    await expect(page.locator("tr.worker.lost")).to_have_count(0)
    assert await pool.zscore(index_key(queue), "host:3") is None

    # A late worker that beats again is ready again; it is never dismissed meanwhile.
    await beat(pool, queue, "host:2", seconds_ago=0, every=600)
    await expect(page.locator("tr.worker.late")).to_have_count(0, timeout=WAIT_MS)
    await expect(rows).to_have_count(2)


async def test_dismissing_needs_the_form_token_and_spares_a_beating_worker(api, pool, settings):
    queue = settings.queue_name
    await beat(pool, queue, "host:2", seconds_ago=8)
    await lost(pool, queue, "host:3", seconds_ago=20)

    refused = await api.post("/workers/dismiss", data={"worker_id": "host:3"})
    assert refused.status_code == 403
    answer = await api.post("/api/workers/dismiss", json={"worker_id": "host:2"})
    assert answer.json() == {"worker_id": "host:2", "dismissed": False}
    answer = await api.post("/api/workers/dismiss", json={"worker_id": "host:3"})
    assert answer.json() == {"worker_id": "host:3", "dismissed": True}
    states = [(w["worker_id"], w["state"]) for w in (await api.get("/api/workers")).json()]
    assert states == [("host:2", "late")]
