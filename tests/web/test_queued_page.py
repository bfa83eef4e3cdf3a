"""The Queued page in a real Chromium: the jobs on the queue with their function, enqueue
time and the start of their payload (hostile text shown literally), a job's own page with
its whole payload, and Cancel from the list. No worker runs: the jobs stay queued."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.web.conftest import Served

HOSTILE = "<img src=x onerror=alert(1)>"


async def enqueue(
    served: Served, function: str, payload: dict[str, object], lane: str | None = None
) -> dict:
    params = {"lane": lane} if lane else {}
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        response = await client.post(f"/api/enqueue/{function}", json=payload, params=params)
    assert response.status_code == 202, response.text
    job: dict = response.json()["job"]
    return job


async def test_queued_jobs_are_listed_opened_and_cancelled(page, served):
    first = await enqueue(
        served,
        "create_profile",
        {"username": "ada", "email": "a@example.com", "full_name": HOSTILE},
    )
    second = await enqueue(served, "start_run", {"experiment_id": 7, "seed": 3})

    await page.goto("/queued")
    rows = page.locator("table.queued tbody tr")
    await expect(rows).to_have_count(2)
    first_row = rows.filter(has_text=first["job_id"])
    await expect(first_row).to_contain_text("create_profile")
    await expect(first_row).to_contain_text("queued")
    await expect(first_row.locator("code.payload")).to_contain_text(HOSTILE)  # as text
    assert await page.locator("img").count() == 0

    await page.goto("/queued?function=start_run")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(second["job_id"])

    await page.click(f"a:text-is('{second['job_id']}')")
    await expect(page.locator("#queued-payload")).to_contain_text('"experiment_id": 7')
    await expect(page.locator("main")).to_contain_text("Enqueued")

    await page.goto("/queued?function=start_run")
    await rows.first.locator("button:text-is('Cancel')").click()
    await expect(page.locator("#job-state")).to_have_text("cancelled")
    await page.goto("/queued")
    await expect(rows).to_have_count(1)

    async with httpx.AsyncClient(base_url=served.url) as client:
        listed = (await client.get("/api/queue/jobs", params={"state": "queued"})).json()
        refused = await client.get("/api/queue/jobs", params={"state": "lost"})
    assert [job["job_id"] for job in listed["jobs"]] == [first["job_id"]]
    assert listed["jobs"][0]["payload_preview"].startswith('[{"')
    assert refused.status_code == 422


async def test_the_queue_is_filtered_by_lane_and_any_means_no_filter(page, served):
    """Lane by lane, most urgent first; the form's "any" sends an empty field: no filter."""
    bulk = await enqueue(served, "start_run", {"experiment_id": 1}, lane="bulk")
    urgent = await enqueue(served, "start_run", {"experiment_id": 2})

    await page.goto("/queued")
    rows = page.locator("table.queued tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text(urgent["job_id"])
    await expect(rows.nth(1)).to_contain_text("bulk")

    await page.select_option("select[name=lane]", "bulk")
    await page.click("form.filters button")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(bulk["job_id"])

    await page.select_option("select[name=lane]", "")
    await page.click("form.filters button")
    await expect(rows).to_have_count(2)  # "any" lane and state: every job

    async with httpx.AsyncClient(base_url=served.url) as client:
        first = (await client.get("/api/queue/jobs", params={"limit": 1})).json()
        rest = (await client.get("/api/queue/jobs", params={"start": first["next"]})).json()
    assert [job["job_id"] for job in first["jobs"] + rest["jobs"]] == [
        urgent["job_id"],
        bulk["job_id"],
    ]
