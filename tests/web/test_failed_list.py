"""Failures handled from their list (issue 20, item 9): Retry and Mark handled come back to
the list, checked rows are handled with one form, a retry handles its original, the
overview's tile counts what is left to handle, and a cancelled job is retried from the
payload the history kept for it."""

from __future__ import annotations

from playwright.async_api import expect

from tests.web.conftest import run_queue
from worker.registry import START_RUN

FAILING = {"experiment_id": 5}  # no such experiment: a permanent failure


async def failures(api, settings, count: int) -> list[str]:
    job_ids = []
    for _ in range(count):
        enqueued = await api.post(f"/api/enqueue/{START_RUN.name}", json=FAILING)
        job_ids.append(enqueued.json()["job"]["job_id"])
    await run_queue(settings)
    return job_ids


async def test_the_failed_list_is_worked_through_without_leaving_it(page, served, api, settings):
    await failures(api, settings, 3)
    await page.goto("/")
    await expect(page.locator("#failed-hour")).to_have_text("3")

    await page.goto("/failed")
    rows = page.locator("#failed-table tbody tr")
    await expect(rows).to_have_count(3)
    await rows.nth(0).get_by_role("button", name="Mark handled").click()
    await expect(page).to_have_url(f"{served.url}/failed?handled=1")
    await expect(page.locator("#handled")).to_have_text("1 failure marked handled.")
    await expect(rows).to_have_count(2)

    await rows.nth(0).get_by_role("button", name="Retry anyway").click()
    await expect(page.locator("#retried")).to_contain_text(":retry:1")
    await expect(rows).to_have_count(1)  # the retried failure is handled

    await rows.nth(0).locator("input[type=checkbox]").check()
    await page.locator("#handle-checked").click()
    await expect(page.locator("#handled")).to_have_text("1 failure marked handled.")
    await expect(page.locator("p.empty")).to_have_text("No failed job waits to be handled.")

    await page.goto("/")
    await expect(page.locator("#failed-hour")).to_have_text("0")
    assert "bad" not in (
        await page.locator(".tile", has=page.locator("#failed-hour")).get_attribute("class") or ""
    )


async def test_many_failures_are_handled_in_one_post_and_bad_ids_are_refused(api, settings):
    job_ids = await failures(api, settings, 3)
    page = await api.get("/failed")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    form = {"csrf": csrf, "back": "/failed", "job_id": job_ids[:2]}
    done = await api.post("/jobs/handle", data=form)
    assert done.status_code == 303
    assert done.headers["location"] == "/failed?handled=2"
    left = [job["job_id"] for job in (await api.get("/api/failed")).json()["failed"]]
    assert left == [job_ids[2]]
    # Back goes to the failed list only, never elsewhere.
    elsewhere = await api.post("/jobs/handle", data={**form, "back": "https://evil.example/"})
    assert elsewhere.status_code == 422
    assert "back" in elsewhere.text
    empty = await api.post("/jobs/handle", data={"csrf": csrf, "job_id": ""})
    assert empty.status_code == 422
    assert "job_id" in empty.text


async def test_a_retry_from_the_api_handles_its_original(api, settings):
    [job_id] = await failures(api, settings, 1)
    retried = await api.post("/api/jobs/retry", json={"job_id": job_id, "force": True})
    assert retried.status_code == 202
    assert (await api.get("/api/failed")).json()["failed"] == []
    record = (await api.get(f"/api/jobs/{job_id}")).json()["record"]
    assert record["handled_at"] is not None


async def test_a_cancelled_job_is_retried_from_its_payload_and_never_said_to_have_run(
    page, served, api, settings
):
    enqueued = await api.post(f"/api/enqueue/{START_RUN.name}", json={"experiment_id": 7})
    job_id = enqueued.json()["job"]["job_id"]
    cancelled = await api.post("/api/jobs/cancel", json={"job_id": job_id})
    assert cancelled.json()["state"] == "cancelled"
    assert (await api.get(f"/api/jobs/{job_id}")).json()["record"]["payload"] == {
        "experiment_id": 7
    }

    await page.goto(f"/jobs/{job_id}")
    await expect(page.locator("#never-ran")).to_have_text("never: cancelled before it ran")
    await expect(page.locator("dl.fields")).not_to_contain_text("ms)")
    await page.get_by_role("button", name="Retry").click()
    await expect(page).to_have_url(f"{served.url}/jobs/{job_id}%3Aretry%3A1")
    attempt = (await api.get(f"/api/jobs/{job_id}:retry:1")).json()["job"]
    assert attempt["state"] == "queued"
