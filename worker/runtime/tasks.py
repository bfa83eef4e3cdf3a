"""A worker's background tasks: one that runs every few seconds, and stopping one for sure."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from worker.text import first_line

log = logging.getLogger("worker")

RECANCEL_SECONDS = 0.05


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and return once it has ended, however it ends.

    One ``cancel()`` is not always enough on Python 3.11: ``asyncio.wait_for`` (which
    fakeredis uses to read a reply) swallows a cancellation that arrives as its inner future
    completes (CPython gh-86296, fixed in 3.12), and the task then runs on. So the task is
    cancelled again until it ends. Its own exception, if any, is not raised here.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_SECONDS)


class Periodic:
    """A background task of the worker: ``tick`` every ``every`` seconds until stopped. A
    tick that fails (the database or Redis away) is told at debug level and tried again
    at the next one."""

    waiting = "a background task waits"  # how its log line starts

    def __init__(self, every: float) -> None:
        self.every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def tick(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.tick()
            except Exception as problem:
                log.debug("%s: %s", self.waiting, first_line(problem))
