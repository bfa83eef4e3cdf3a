"""A bench-only worker that measures how late its event loop runs what is due.

``python -m arq bench.loop_lag.WorkerSettings`` is ``worker.main.WorkerSettings`` with one
more task from the end of ``on_startup``: it sleeps ``STEP_S`` and notes how much later
than that it woke (the loop's lag: a job's start, or the next poll, waits as long behind
whatever holds the loop, or behind the machine's other processes). The lags (ms) go to
``BENCH_LOOP_LAG_PATH`` as JSON at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from worker import main
from worker.runtime.tasks import cancel_and_wait

STEP_S = 0.01
TASK_KEY, LAGS_KEY = "bench_loop_lag", "bench_loop_lags"


async def _note_lags(lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        asleep_at = loop.time()
        await asyncio.sleep(STEP_S)
        lags.append(1000 * (loop.time() - asleep_at - STEP_S))


def with_lag_probe(settings: dict[str, Any]) -> dict[str, Any]:
    started, stopped = settings["on_startup"], settings["on_shutdown"]

    async def on_startup(ctx: dict[str, Any]) -> None:
        await started(ctx)
        ctx[LAGS_KEY] = []
        ctx[TASK_KEY] = asyncio.get_running_loop().create_task(_note_lags(ctx[LAGS_KEY]))

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await cancel_and_wait(ctx[TASK_KEY])
        _write(ctx[LAGS_KEY])
        await stopped(ctx)

    return {**settings, "on_startup": on_startup, "on_shutdown": on_shutdown}


def _write(lags: list[float]) -> None:
    with open(os.environ["BENCH_LOOP_LAG_PATH"], "w") as out:
        json.dump(lags, out)


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        return with_lag_probe(main.__getattr__(name))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
