"""A bench-only worker whose one job does nothing: the ceiling of arq with our settings.

``python -m arq bench.noop.WorkerSettings`` runs it with the same hooks (leases), event
loop (uvloop), serializer and tuning as ``worker.main.WorkerSettings``; only the jobs differ.
"""

from __future__ import annotations

from typing import Any

from arq.worker import func

from worker import main

NOOP = "noop"


async def noop(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    return None


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        # The real worker's own set-up (logging, uvloop, settings), then other jobs.
        real = main.__getattr__(name)
        return {**real, "functions": [func(noop, name=NOOP)], "cron_jobs": []}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
