"""The API's queue overview and workers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from worker.web import queue
from worker.web.console import Console, console_of
from worker.web.schemas import ERRORS, QueueOverview, WorkerOut

router = APIRouter(prefix="/api", tags=["queue"], responses=ERRORS)
Sources = Annotated[Console, Depends(console_of)]


@router.get("/queue", summary="Depth, running jobs, workers, and throughput lately")
async def get_queue(console: Sources) -> QueueOverview:
    return await queue.overview(console)


@router.get("/workers", summary="Workers alive, with their last heartbeat")
async def get_workers(console: Sources) -> list[WorkerOut]:
    return await queue.workers(console)
