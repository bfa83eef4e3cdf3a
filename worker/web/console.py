"""What every request borrows: the console's ``Services`` (``worker.bootstrap``), opened
once by the app's lifespan: the queue's pool and a small database pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from worker.bootstrap import Services
from worker.settings import Settings

DB_POOL_SIZE = 5  # a console serves a few operators, not the job traffic


async def open_console(settings: Settings) -> Services:
    services = Services(settings, db_pool_size=DB_POOL_SIZE)
    await services.queue()  # a Redis that is not there stops the console at its start
    return services


def console_of(request: Request) -> Services:
    services: Services = request.app.state.console
    return services


Console = Annotated[Services, Depends(console_of)]
