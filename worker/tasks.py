"""Stopping a task for sure, ours or arq's.

On Python 3.11 one ``cancel()`` does not always stop a task: ``asyncio.wait_for``
swallows a cancellation that arrives in the tick its inner future completes (CPython
gh-86296, fixed in 3.12), and the task runs on. redis-py sends every command through
``wait_for`` once a socket timeout is set (``JOBS_REDIS_SOCKET_TIMEOUT``), and fakeredis
reads every reply through it, so any task talking to Redis can swallow one.
"""

from __future__ import annotations

import asyncio
from typing import Any

RECANCEL_SECONDS = 0.05
WATCH_SECONDS = 0.5


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task``, again until it ends; its own exception, if any, is not raised here."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_SECONDS)


async def complete_cancellation(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` again if it still runs a whole watch after someone cancelled it.

    For a task someone else cancels once, as arq does its worker's main task on SIGTERM:
    a swallowed cancellation would keep that worker polling forever.
    """
    pending_at_last_look = False
    while not task.done():
        await asyncio.sleep(WATCH_SECONDS)
        pending = task.cancelling() > 0 and not task.done()
        if pending and pending_at_last_look:
            task.cancel()
        pending_at_last_look = pending
