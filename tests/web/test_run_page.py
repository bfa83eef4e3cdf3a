"""The run page in a real headless Chromium: a chart per metric drawn from the server's
downsampled history, a drag across it (or a typed step range) read again finer from the
server, a second run overlaid, names shown literally."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, Response, expect

from tests.support.db import MakeUow, add_experiment, add_profile, add_run
from tests.support.rows import store_points
from tests.web.conftest import metrics_locked, readme_picture, serving, until
from worker.settings import Settings

HOSTILE = "<img src=x onerror=alert(1)>"
STEPS = 2000


@dataclass(frozen=True)
class Runs:
    first: int
    second: int


@pytest.fixture
async def runs(uow_factory: MakeUow, session_factory) -> Runs:
    owner = await add_profile(uow_factory)
    experiment = await add_experiment(uow_factory, owner.id, name="sweep")
    first, second = [(await add_run(uow_factory, experiment.id)).id for _ in range(2)]
    for run_id, rate in ((first, 300), (second, 700)):
        # A decay with noise that changes every step: the band shows what a bucket hides.
        points = {s: math.exp(-s / rate) + 0.05 * math.sin(s * 7.1) for s in range(STEPS)}
        await store_points(session_factory, run_id, points, "loss")
    await store_points(session_factory, first, {s: s / 100 for s in range(100)}, HOSTILE)
    return Runs(first, second)


def history(response: Response, *, zoomed: bool, runs: int = 1) -> bool:
    """Whether the response answers the history API, for a step range or the whole run,
    for so many runs."""
    url = urlsplit(response.url)
    query = parse_qs(url.query)
    return (
        url.path == "/api/metrics/history"
        and ("first_step" in query) == zoomed
        and len(query.get("run_ids", [])) == runs
    )


async def drawn_pixels(chart: Locator) -> int:
    """Pixels painted on the chart's canvas (axes, lines and bands)."""
    painted: int = await chart.locator("canvas").evaluate(
        """canvas => {
            const { width, height } = canvas;
            const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
            let painted = 0;
            for (let at = 3; at < data.length; at += 4) if (data[at] > 0) painted++;
            return painted;
        }"""
    )
    return painted


async def drag(page: Page, chart: Locator, start: float, end: float) -> None:
    await chart.scroll_into_view_if_needed()
    box = await chart.locator(".u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    await page.mouse.move(box["x"] + box["width"] * start, y)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] * end, y, steps=8)
    await page.mouse.up()


async def test_a_run_is_charted_zoomed_and_compared(page: Page, runs: Runs, tmp_path: Path) -> None:
    await page.goto(f"/runs/{runs.first}")
    loss = page.locator('section.chart[data-metric="loss"]')
    await expect(loss).to_have_attribute("data-state", "drawn")
    await expect(loss).to_have_attribute("data-series", "1")
    await expect(loss).to_have_attribute("data-last", str(STEPS - 1))
    await expect(loss.locator("canvas")).to_have_count(1)
    lines = loss.locator(".u-legend tr.u-series:visible")  # the step, then a row per run
    await expect(lines).to_have_count(2)
    assert await drawn_pixels(loss) > 2000

    hostile = page.locator("section.chart").filter(has=page.get_by_role("heading", name=HOSTILE))
    await expect(hostile).to_have_attribute("data-state", "drawn")
    await expect(hostile).to_have_attribute("data-metric", HOSTILE)
    assert await page.locator("img").count() == 0

    async with page.expect_response(lambda r: history(r, zoomed=True)) as zoom:
        await drag(page, loss, 0.4, 0.5)
    zoomed = await (await zoom.value).json()
    first, last = zoomed["first_step"], zoomed["last_step"]
    assert 600 < first < last < 1100, (first, last)
    assert {b["points"] for b in zoomed["series"][0]["buckets"]} == {1}  # one step a bucket
    await expect(loss).to_have_attribute("data-first", str(first))
    await expect(loss.locator("input[name=first_step]")).to_have_value(str(first))

    async with page.expect_response(lambda r: history(r, zoomed=True, runs=2)):
        await page.locator(f'input[name=compare][value="{runs.second}"]').check()
    await expect(loss).to_have_attribute("data-series", "2")
    await expect(loss).to_have_attribute("data-first", str(first))  # still zoomed
    await expect(lines).to_have_count(3)
    assert page.url.endswith(f"/runs/{runs.first}?compare={runs.second}")
    await expect(loss.locator(".status")).to_contain_text(f"run {runs.second}:")

    async with page.expect_response(lambda r: history(r, zoomed=False, runs=2)):
        await loss.locator(".u-over").dblclick()
    await expect(loss).to_have_attribute("data-first", "0")
    await expect(loss).to_have_attribute("data-last", str(STEPS - 1))
    await expect(loss.locator(".status")).to_contain_text(
        f"points run {runs.first}: 2,000, run {runs.second}: 2,000"
    )
    await page.screenshot(path=str(readme_picture("run-page.png", tmp_path)), full_page=True)

    await loss.locator("input[name=first_step]").fill("1500")
    async with page.expect_response(lambda r: history(r, zoomed=True, runs=2)) as typed:
        await loss.get_by_role("button", name="Zoom").click()
    assert (await (await typed.value).json())["first_step"] == 1500
    await expect(loss).to_have_attribute("data-first", "1500")


async def test_a_chart_asks_again_when_the_console_is_busy(
    browser: Browser, settings: Settings, emptied_pg_engine, runs: Runs
) -> None:
    """The one heavy-read slot held by a read blocked on a lock: the chart's request is
    answered 503, and once the slot is free the chart asks again after Retry-After."""
    busy = {"console_heavy_reads": 1, "console_wait_seconds": 0.2}
    with serving(settings.model_copy(update=busy)) as served:
        budget = served.server.config.app.state.heavy_reads
        context = await browser.new_context(base_url=served.url)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"/runs/{runs.first}")
        loss = page.locator('section.chart[data-metric="loss"]')
        await expect(loss).to_have_attribute("data-state", "drawn")
        async with httpx.AsyncClient(base_url=served.url) as client:
            async with metrics_locked(emptied_pg_engine):
                params = {"name": "loss", "run_ids": [runs.first], "buckets": 10}
                held = asyncio.create_task(client.get("/api/metrics/history", params=params))
                await until(lambda: budget.running == 1, "the heavy-read slot taken")
                async with page.expect_response(
                    lambda r: history(r, zoomed=False, runs=2)
                ) as refused:
                    await page.locator(f'input[name=compare][value="{runs.second}"]').check()
                assert (await refused.value).status == 503
                await expect(loss).to_have_attribute("data-state", "loading")
            assert (await held).status_code == 200
        await expect(loss).to_have_attribute("data-series", "2", timeout=15_000)
        await expect(loss).to_have_attribute("data-state", "drawn")
        await context.close()
    assert errors == [], "script errors in the page"
