"""The dashboard in a real headless Chromium (Debian's, driven by Playwright), served by a
real uvicorn, with a real worker process running the jobs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from tests.web.conftest import Served, readme_picture
from worker.settings import Settings
from worker.testing.processes import WorkerProcess, service_env, start_worker

WAIT_MS = 15_000  # what a page may take to show a change: jobs run, the overview polls
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    env = service_env(
        settings.database_url.get_secret_value(),
        settings.redis_url.get_secret_value(),
        JOBS_HEARTBEAT_SECONDS="0.5",
    )
    process = start_worker(env, tmp_path / "worker.log")
    yield process
    process.stop()


async def enqueue(
    served: Served, function: str, payload: dict[str, object], **params: object
) -> dict:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        response = await client.post(f"/api/enqueue/{function}", json=payload, params=params)
    assert response.status_code in (200, 202), response.text
    job: dict = response.json()["job"]
    return job


async def finished(served: Served, function: str, payload: dict[str, object]) -> dict:
    job = await enqueue(served, function, payload, wait=20)
    assert job["state"] in ("succeeded", "failed"), job
    return job


async def test_every_page_loads_and_shows_hostile_text_literally(page, served, worker):
    profile = await finished(
        served,
        "create_profile",
        {"username": "ada", "email": "ada@example.com", "full_name": HOSTILE},
    )
    owner = profile["result"]["id"]
    await finished(served, "create_experiment", {"owner_id": owner, "name": HOSTILE})
    await finished(served, "start_run", {"experiment_id": 1, "seed": 3})
    failed = await finished(served, "finish_run", {"run_id": 99, "status": "completed"})
    pages = {
        "/": "Overview",
        "/jobs": "Jobs",
        "/failed": "Failed jobs, not handled",
        "/workers": "Workers",
        "/experiments": "Experiments",
        "/experiments/1": "Experiment 1",
        "/runs/1": "Run 1",  # no metric yet: no chart, no script error
        f"/profiles/{owner}": f"Profile {owner}",
        "/jobs/" + failed["job_id"]: "Job",
    }
    for path, title in pages.items():
        response = await page.goto(path)
        assert response is not None
        assert response.status == 200, path
        await expect(page.locator("h1")).to_contain_text(title)
    await page.goto("/experiments")
    await expect(page.get_by_role("link", name=HOSTILE)).to_be_visible()  # text, not an image
    assert await page.locator("img").count() == 0
    await page.goto("/jobs?state=failed")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await page.goto("/workers")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(page.locator("tbody")).to_contain_text("ready")
    await page.goto("/jobs?job_id=no-such-job")
    await expect(page.locator(".notice")).to_contain_text("No job has the id")
    await page.goto("/experiments?state=failed")
    await expect(page.locator(".empty")).to_have_text("No experiment matches these filters.")


async def test_a_failed_job_is_retried_from_its_page_and_succeeds(page, served, worker):
    await finished(
        served, "create_profile", {"username": "ada", "email": "a@example.com", "full_name": "A"}
    )
    failed = await finished(served, "start_run", {"experiment_id": 1})
    assert failed["state"] == "failed"  # no experiment 1 yet
    await finished(served, "create_experiment", {"owner_id": 1, "name": "baseline"})
    await page.goto("/failed")
    await page.get_by_role("link", name=failed["job_id"]).click()
    await expect(page.locator("#job-state")).to_have_text("failed")
    await expect(page.locator(".error").first).to_contain_text("ExperimentNotFound")
    await page.get_by_role("button", name="Retry anyway").click()
    await expect(page.locator("h1")).to_contain_text(f"{failed['job_id']}:retry:1")
    for _ in range(50):
        if await page.locator("#job-state").inner_text() == "succeeded":
            break
        await page.wait_for_timeout(200)
        await page.reload()
    await expect(page.locator("#job-state")).to_have_text("succeeded")
    await expect(page.locator("pre").first).to_contain_text('"experiment_id": 1')
    # The retry handled its original: its page offers no Mark handled, the list is empty.
    await page.goto("/jobs/" + failed["job_id"])
    await expect(page.get_by_role("button", name="Mark handled")).to_have_count(0)
    await page.goto("/failed")
    await expect(page.locator(".empty")).to_have_text("No failed job waits to be handled.")


async def test_the_overview_moves_when_jobs_run(page, served, worker, tmp_path):
    await page.goto("/")
    await expect(page.locator("#workers")).to_have_text("1", timeout=WAIT_MS)
    before = int(await page.locator("#done-hour").inner_text())
    for n in range(5):
        await enqueue(
            served,
            "create_profile",
            {"username": f"user{n}", "email": f"user{n}@example.com", "full_name": f"User {n}"},
        )
    await enqueue(served, "start_run", {"experiment_id": 7})  # fails: no such experiment
    # No reload: the page polls. The worker's minutely cron job (fail_stale_runs) may
    # succeed during the test too, once or twice.
    done = re.compile("^(" + "|".join(str(before + n) for n in (5, 6, 7)) + ")$")
    await expect(page.locator("#done-hour")).to_have_text(done, timeout=WAIT_MS)
    await expect(page.locator("#failed-hour")).to_have_text("1", timeout=WAIT_MS)
    await expect(page.locator("#rate")).not_to_have_text("0.0")
    shot = readme_picture("dashboard.png", tmp_path)
    await page.screenshot(path=str(shot), full_page=True)
    assert re.match(rb"\x89PNG", shot.read_bytes()[:4])


async def test_the_policy_blocks_what_the_console_does_not_serve(page, csp_violations):
    for path in ("/login", "/jobs/no-such-job"):  # a form, an error page
        await page.goto(path)
        await expect(page.locator("h1")).to_be_visible()
    assert csp_violations == []  # the console's own pages run under it untouched
    await page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true";
            document.body.append(script);
        }"""
    )
    assert await page.evaluate("() => window.injected") is None
    await page.evaluate("() => new Promise((done) => setTimeout(done, 50))")
    assert csp_violations == ["script-src-elem blocked inline on /jobs/no-such-job"]
    csp_violations.clear()  # seen: the fixture's own check is for the console's pages
