"""The API's queue overview and workers."""

from __future__ import annotations

from fastapi import APIRouter, Response

from worker.ops.queue_prometheus import CONTENT_TYPE, read_exposition
from worker.web import queue
from worker.web.console import Console
from worker.web.schemas import ERRORS, QueueOverview, WorkerOut

router = APIRouter(prefix="/api", tags=["queue"], responses=ERRORS)
# Prometheus scrapes the queue here; each worker serves its own counters on its own port.
metrics_router = APIRouter()


@router.get("/queue", summary="Depth, running jobs, workers, and throughput lately")
async def get_queue(console: Console) -> QueueOverview:
    return await queue.overview(console)


@router.get("/workers", summary="Workers alive, with their last heartbeat")
async def get_workers(console: Console) -> list[WorkerOut]:
    return await queue.workers(console)


@metrics_router.get("/metrics", include_in_schema=False)
async def get_metrics(console: Console) -> Response:
    """The queue's gauges (worker.ops.queue_prometheus), in Prometheus's text format."""
    body = await read_exposition(await console.queue(), console.settings.queue_name)
    return Response(body, media_type=CONTENT_TYPE)
