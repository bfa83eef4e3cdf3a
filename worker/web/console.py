"""What every request borrows: the console's ``Services`` (``worker.bootstrap``), opened
once by the app's lifespan, and its budget of heavy reads (``worker.web.budget``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from worker.bootstrap import DatabasePool, Services
from worker.settings import Settings
from worker.web.budget import LIGHT_CONNECTIONS, ReadBudget


async def open_console(app: FastAPI, settings: Settings) -> Services:
    """The console's services, with a connection for each heavy read beyond the light
    reads' own (``app.state.heavy_reads``); a Redis that is not there stops it at its start."""
    heavy = ReadBudget(settings.console_heavy_reads, settings.console_wait_seconds)
    database = DatabasePool(
        LIGHT_CONNECTIONS + heavy.slots,
        wait_seconds=settings.console_wait_seconds,
        statement_timeout=settings.console_statement_timeout,
    )
    services = Services(settings, database)
    await services.queue()
    app.state.heavy_reads = heavy
    app.state.console = services
    return services


def console_of(request: Request) -> Services:
    services: Services = request.app.state.console
    return services


Console = Annotated[Services, Depends(console_of)]
