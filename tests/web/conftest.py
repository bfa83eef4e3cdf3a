"""The console against the suite's PostgreSQL and Redis: in-process (httpx's ASGI
transport, the app's lifespan run by hand) for the API, a real uvicorn for the browser
(Debian's headless Chromium, driven by Playwright)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.main import build_worker_settings
from worker.runtime.claiming import ClaimingWorker
from worker.settings import Settings
from worker.testing.scratch import RedisSpace
from worker.web.app import create_app
from worker.web.serving import server_config

TOKEN = "s3cret-console-token"
CHROMIUM = "/usr/bin/chromium"


def console_settings(database_url: str, redis_url: str, **extra: Any) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url, _env_file=None, **extra)  # type: ignore[call-arg]


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


@asynccontextmanager
async def metrics_locked(engine: AsyncEngine) -> AsyncIterator[None]:
    """Every read of the metrics table waits, in PostgreSQL, until the block ends: heavy
    reads held by a lock, never by timing."""
    async with engine.connect() as holder:
        await holder.execute(text("LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE"))
        yield
        await holder.rollback()


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait, bounded, for ``condition``; fail naming ``what`` if it never holds."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def settings(pg_database: str, clean_redis: RedisSpace, emptied_pg_engine: AsyncEngine) -> Settings:
    return console_settings(pg_database, clean_redis.url)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The console with no token: open, as on a developer's loopback."""
    async with client_of(create_app(settings)) as client:
        yield client


@pytest.fixture
async def guarded(pg_database: str, clean_redis: RedisSpace) -> AsyncIterator[httpx.AsyncClient]:
    """The console with JOBS_CONSOLE_TOKEN set."""
    app = create_app(console_settings(pg_database, clean_redis.url, console_token=TOKEN))
    async with client_of(app) as client:
        yield client


async def run_queue(settings: Settings) -> None:
    """A real arq worker, in this process, until the queue is empty."""
    worker = ClaimingWorker(**build_worker_settings(settings, burst=True, poll_delay=0.01))
    try:
        await worker.async_run()
    finally:
        with warnings.catch_warnings():
            # arq 0.28 closes its pool with redis-py's deprecated close().
            warnings.filterwarnings(
                "ignore", message=r"Call to deprecated close\.", category=DeprecationWarning
            )
            await worker.close()


@dataclass
class Served:
    url: str
    server: uvicorn.Server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(settings: Settings) -> Iterator[Served]:
    """The console on a real uvicorn, on a free loopback port, in a thread of its own."""
    port = free_port()
    app = create_app(settings)
    config = server_config(app, settings, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console did not start")
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    with serving(settings) as console:
        yield console


@pytest.fixture
def served_with_token(settings: Settings) -> Iterator[Served]:
    with serving(settings.model_copy(update={"console_token": SecretStr(TOKEN)})) as console:
        yield console


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the session (a launch took 1-2 s); each test has a context of its own."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240  # once, before any browser
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        await browser.close()


# Each page reports what its Content-Security-Policy blocked (the init script runs before
# the page's own, outside its policy).
REPORT_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (event) =>
  window.cspViolation(
    `${event.violatedDirective} blocked ${event.blockedURI} on ${location.pathname}`
  )
);"""


@pytest.fixture
def csp_violations() -> list[str]:
    return []


@pytest.fixture
async def page(browser: Browser, served: Served, csp_violations: list[str]) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=served.url, viewport={"width": 960, "height": 720})
    await context.expose_binding("cspViolation", lambda _source, told: csp_violations.append(told))
    await context.add_init_script(REPORT_VIOLATIONS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    await page.evaluate("() => new Promise((done) => setTimeout(done, 50))")  # late reports
    await context.close()
    assert errors == [], "script errors in the page"
    assert csp_violations == [], "the Content-Security-Policy blocked part of a page"


DOCS = Path(__file__).resolve().parents[2] / "docs"


def readme_picture(name: str, tmp_path: Path) -> Path:
    """Where a browser test saves a page's picture: the README's own with
    ``UPDATE_SCREENSHOT=1``, else a scratch file, so that a test run leaves git clean."""
    return DOCS / name if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / name
