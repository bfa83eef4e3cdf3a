"""The console's queue controls and flow chart (``worker/web/lane_routes.py``): over the API,
and on the overview in a real headless Chromium."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import utcnow
from tests.support.rows import seed_job_record
from tests.web.conftest import TOKEN, Served
from worker.lanes import paused_key
from worker.registry import CREATE_PROFILE, FAIL_STALE_RUNS, GENERATE_CHUNK, RECORD_METRICS

WAIT_MS = 15_000


async def queued(served: Served, count: int, **params: object) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        for n in range(count):
            payload = {"run_id": 1, "status": "completed", "reason": f"r{n}"}
            response = await client.post("/api/enqueue/finish_run", json=payload, params=params)
            assert response.status_code == 202, response.text


async def test_pause_resume_and_caps_over_the_api(api, redis, settings):
    paused = await api.post("/api/lanes/pause", json={"target": "bulk"})
    kind = await api.post("/api/lanes/pause", json={"target": "generate-profiles"})
    capped = await api.put(f"/api/limits/{GENERATE_CHUNK.command}", json={"limit": 3})
    unknown = await api.post("/api/lanes/pause", json={"target": "<everything>"})
    members = await redis.smembers(paused_key(settings.queue_name))
    resumed = await api.post("/api/lanes/resume", json={"target": "bulk"})

    assert paused.status_code == kind.status_code == capped.status_code == 200
    assert {lane["lane"]: lane["paused"] for lane in paused.json()["lanes"]}["bulk"] is True
    jobs = {job["job"]: job for job in capped.json()["jobs"]}
    assert jobs[GENERATE_CHUNK.name]["limit"] == 3
    assert jobs["generate_profiles"]["paused"] is True
    assert unknown.status_code == 404
    assert "<everything>" in unknown.text
    assert members == {b"lane:bulk", b"job:generate_profiles"}
    assert {lane["lane"]: lane["paused"] for lane in resumed.json()["lanes"]}["bulk"] is False


async def test_the_controls_change_state_only_with_the_token(guarded):
    refused = await guarded.post("/api/lanes/pause", json={"target": "bulk"})
    allowed = await guarded.post(
        "/api/lanes/pause", json={"target": "bulk"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert refused.status_code == 401
    assert allowed.status_code == 200


async def test_the_flow_counts_jobs_per_minute_by_lane_and_outcome(api, emptied_pg_engine):
    sessions = async_sessionmaker(emptied_pg_engine, expire_on_commit=False)
    now = utcnow()
    for n in range(3):
        await seed_job_record(sessions, f"p{n}", status="succeeded", finished_at=now)
    await seed_job_record(
        sessions, "m", status="failed", finished_at=now, function=RECORD_METRICS.name
    )
    await seed_job_record(sessions, "old", status="succeeded", finished_at=now - timedelta(hours=2))

    hour = (await api.get("/api/flow")).json()
    day = (await api.get("/api/flow", params={"window": "day"})).json()

    assert len(hour["starts"]) == 60
    totals = {(one["lane"], one["state"]): sum(one["jobs"]) for one in hour["series"]}
    assert totals == {("interactive", "succeeded"): 3, ("bulk", "failed"): 1}
    assert len(day["starts"]) == 144
    # Per minute, over buckets of ten minutes: 5 jobs in the day.
    assert sum(sum(one["jobs"]) for one in day["series"]) * 10 == pytest.approx(5)


async def test_the_overview_pauses_and_resumes_a_lane_and_draws_the_flow(
    page, served, redis, settings, emptied_pg_engine
):
    sessions = async_sessionmaker(emptied_pg_engine, expire_on_commit=False)
    now = utcnow()
    for minute in range(0, 50, 2):
        for n in range(minute % 7 + 1):
            await seed_job_record(
                sessions,
                f"i{minute}:{n}",
                status="succeeded",
                finished_at=now - timedelta(minutes=minute),
            )
        await seed_job_record(
            sessions,
            f"b{minute}",
            status="succeeded" if minute % 10 else "failed",
            finished_at=now - timedelta(minutes=minute),
            function=RECORD_METRICS.name,
        )
    await seed_job_record(
        sessions, "cron", status="succeeded", finished_at=now, function=FAIL_STALE_RUNS.name
    )
    await queued(served, 4, lane="bulk")
    await queued(served, 2)

    await page.goto("/")
    bulk = page.locator('#lanes tr[data-lane="bulk"]')
    await expect(bulk).to_contain_text("4", timeout=WAIT_MS)
    await expect(page.locator('#lanes tr[data-lane="interactive"]')).to_contain_text("2")
    await expect(page.locator("#flow-chart .uplot")).to_have_count(1, timeout=WAIT_MS)
    await bulk.get_by_role("button", name="Pause").click()
    await expect(page.locator('#lanes tr[data-lane="bulk"]')).to_contain_text(
        "paused", timeout=WAIT_MS
    )
    assert await redis.smembers(paused_key(settings.queue_name)) == {b"lane:bulk"}
    await page.locator("#flow").scroll_into_view_if_needed()
    await page.get_by_role("button", name="Last day").click()
    await expect(page.get_by_role("button", name="Last day")).to_have_attribute(
        "aria-pressed", "true"
    )
    await page.locator('#lanes tr[data-lane="bulk"]').get_by_role("button", name="Resume").click()
    await expect(page.locator('#lanes tr[data-lane="bulk"]')).to_contain_text(
        "running", timeout=WAIT_MS
    )
    assert await redis.smembers(paused_key(settings.queue_name)) == set()
    assert CREATE_PROFILE.lane == "interactive"
