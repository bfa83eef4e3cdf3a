"""A bench-only worker that profiles itself between startup and shutdown.

``python -m arq bench.profiled.WorkerSettings`` is ``worker.main.WorkerSettings`` with
cProfile on from the end of ``on_startup`` to the start of ``on_shutdown``, so imports and
connection set-up stay out of the picture. The stats go to ``BENCH_PROFILE_PATH``.
"""

from __future__ import annotations

import cProfile
import os
from typing import Any

from worker import main

PROFILER_KEY = "bench_profiler"


def with_profiler(settings: dict[str, Any]) -> dict[str, Any]:
    started, stopped = settings["on_startup"], settings["on_shutdown"]

    async def on_startup(ctx: dict[str, Any]) -> None:
        await started(ctx)
        profiler = cProfile.Profile()
        ctx[PROFILER_KEY] = profiler
        profiler.enable()

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        profiler: cProfile.Profile = ctx[PROFILER_KEY]
        profiler.disable()
        profiler.dump_stats(os.environ["BENCH_PROFILE_PATH"])
        await stopped(ctx)

    return {**settings, "on_startup": on_startup, "on_shutdown": on_shutdown}


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        return with_profiler(main.__getattr__(name))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
