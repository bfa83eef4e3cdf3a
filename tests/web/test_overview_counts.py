"""The overview agrees with itself (issue 20, item 7): a worker row counts the jobs the
Running table lists on it, "waiting" is one number, the Running table shows a page of 20
with a link to the rest, and a generation shows how far its chunks got as a whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from playwright.async_api import expect

from domain.db import utcnow
from worker.bootstrap import open_pool
from worker.ops.job_notes import SUBMISSION_PREFIX
from worker.ops.queue_state import lease_value
from worker.ops.workers import READY, WorkerBeat, index_key, worker_key
from worker.registry import JOBS
from worker.settings import Settings

FUNCTION = next(iter(JOBS))


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await open_pool(settings)
    yield pool
    await pool.aclose()


async def running(pool: ArqRedis, queue: str, job_id: str, worker_id: str) -> None:
    await pool.zadd(queue, {job_id: timestamp_ms() - 60_000})
    await pool.set(in_progress_key_prefix + job_id, lease_value(worker_id), px=60_000)


async def test_counts_agree_the_running_table_is_paged_and_a_generation_shows_progress(
    page, served, pool, settings
):
    queue = settings.queue_name
    # The worker's beat says 3 (a beat is up to an interval old); the queue says 25.
    beat = WorkerBeat("host:1", queue, utcnow(), utcnow(), 3, READY, 60.0)
    await pool.set(worker_key(queue, "host:1"), beat.to_json(), px=60_000)
    await pool.zadd(index_key(queue), {"host:1": timestamp_ms()})
    for n in range(24):
        await running(pool, queue, f"busy:{n:02}", "host:1")
    # A generation of 10 chunks: 6 ended, 1 running, 3 waiting.
    marker = {"function": FUNCTION, "jobs": 10}
    await pool.set(SUBMISSION_PREFIX + "gen-1", orjson.dumps(marker), px=60_000)
    await running(pool, queue, "gen-1:6", "host:1")
    for n in (7, 8, 9):
        await pool.zadd(queue, {f"gen-1:{n}": timestamp_ms() - 1_000})
    await pool.zadd(queue, {"alone": timestamp_ms() - 1_000, "later": timestamp_ms() + 3_600_000})

    await page.goto("/")
    await expect(page.locator("#running")).to_have_text("25")
    await expect(page.locator("#queued")).to_have_text("4")
    await expect(page.locator("#waiting-line")).to_have_text("4 waiting")
    # The deferred job is not waiting: the table by function adds up to the same 4.
    await expect(page.locator("#waiting-by-function td.num")).to_have_text(["4"])
    worker_row = page.locator("#worker-table tr.worker", has_text="host:1")
    await expect(worker_row.locator("td.num").first).to_have_text("25")
    await expect(page.locator("#running-table tbody tr")).to_have_count(20)
    await expect(page.locator("#running-pages")).to_contain_text("1–20 of 25 running")
    generation = page.locator("#in-progress tr.submission", has_text="gen-1")
    await expect(generation).to_contain_text("6/10")

    # The Workers page and the API count the same read, not the beat's 3.
    listed = await (await page.request.get("/api/workers")).json()
    assert [(w["worker_id"], w["running"]) for w in listed] == [("host:1", 25)]

    await page.locator("#running-more").click()
    await expect(page.locator("#running-table tbody tr")).to_have_count(5)
    await expect(page.locator("#running-pages")).to_contain_text("21–25 of 25 running")
    # The page polls its fragment: the second page stays the second page.
    await page.wait_for_event("response", lambda r: "/fragments/overview" in r.url)
    await expect(page.locator("#running-table tbody tr")).to_have_count(5)


async def test_a_bad_running_page_is_refused_naming_the_field(api):
    answer = await api.get("/?running_from=-1")
    assert answer.status_code == 422
    assert "running_from" in answer.text
