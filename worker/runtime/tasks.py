"""Stopping a background task for sure."""

from __future__ import annotations

import asyncio
from typing import Any

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
