"""The API's page works offline (issue 20, item 11): Swagger UI's script and style come from
the package, not a CDN, and the console has an icon at /favicon.ico."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.async_api import Route, expect


async def test_docs_reference_only_local_assets_and_the_icon_answers(api):
    docs = await api.get("/docs")
    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets, "the page names no script or style"
    assert all(asset.startswith("/") and not asset.startswith("//") for asset in assets), assets
    for asset in assets:
        assert (await api.get(asset)).status_code == 200, asset
    policy = docs.headers["content-security-policy"]
    assert "http" not in policy, policy  # nothing from another host may run

    icon = await api.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.startswith(b"<svg")
    assert '<link rel="icon" href="/favicon.ico"' in (await api.get("/")).text


async def test_swagger_ui_renders_with_every_other_host_unreachable(page, served):
    elsewhere: list[str] = []

    async def offline(route: Route) -> None:
        if urlsplit(route.request.url).netloc == urlsplit(served.url).netloc:
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", offline)
    await page.goto("/docs")
    title = page.locator(".swagger-ui .info .title")
    await expect(title).to_contain_text("dbjobs console", timeout=30_000)  # a 1.8 MB script
    await expect(page.locator(".opblock-tag-section").first).to_be_visible()
    assert elsewhere == []
