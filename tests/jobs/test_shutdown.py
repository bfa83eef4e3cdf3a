"""A worker stops on SIGTERM even when its main task swallows arq's one cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from arq import Worker

from tests.jobs.conftest import BurstHarness, close_quietly

STOP_WITHIN_SECONDS = 10


def _swallow_the_first_cancel(worker: Worker) -> asyncio.Event:
    """From its first heart beat, the worker's main task swallows one cancellation.

    As redis-py's ``asyncio.wait_for`` does on Python 3.11 when the cancel lands in the
    tick a command's send completes.
    """
    blocking = asyncio.Event()
    beat = worker.heart_beat
    swallowed = False

    async def heart_beat() -> None:
        nonlocal swallowed
        if not swallowed:
            swallowed = True
            blocking.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)
        await beat()

    worker.heart_beat = heart_beat  # type: ignore[method-assign]
    return blocking


async def test_sigterm_stops_a_worker_whose_main_task_swallowed_the_cancel(
    harness: BurstHarness,
) -> None:
    worker = harness.worker(burst=False, poll_delay=0.01)
    blocking = _swallow_the_first_cancel(worker)
    running = asyncio.create_task(worker.async_run())
    try:
        await asyncio.wait_for(blocking.wait(), STOP_WITHIN_SECONDS)
        worker.handle_sig(signal.SIGTERM)
        await asyncio.wait({running}, timeout=STOP_WITHIN_SECONDS)
        assert running.done(), "the worker ran on after SIGTERM"
        assert worker.main_task is not None
        assert worker.main_task.cancelled()
    finally:
        running.cancel()
        await close_quietly(worker)
