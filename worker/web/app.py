"""The console's app factory: ``create_app()`` for uvicorn (``dbjobs serve``) and the tests."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from worker.settings import Settings
from worker.web import (
    data_routes,
    errors,
    job_routes,
    lane_routes,
    live_routes,
    metric_routes,
    openapi,
    queue_routes,
    security,
)
from worker.web.console import open_console
from worker.web.guards import Guard

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("worker.web")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await open_console(app, settings)
        log.info("console ready; state changes %s", security.describe(settings))
        try:
            yield
        finally:
            await app.state.console.close()

    app = FastAPI(
        title="dbjobs console",
        summary="The queue, the job history and the data of dbjobs, over HTTP.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # openapi.install serves it, under its own Content-Security-Policy
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(Guard, settings=settings)
    errors.install(app)
    for router in (
        job_routes.api,
        queue_routes.api,
        live_routes.api,
        lane_routes.api,
        queue_routes.prometheus,
        data_routes.api,
        metric_routes.api,
        security.router,
        queue_routes.pages,
        lane_routes.pages,
        job_routes.pages,
        live_routes.pages,
        data_routes.pages,
        metric_routes.pages,
    ):
        app.include_router(router)
    openapi.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
