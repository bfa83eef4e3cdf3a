"""A worker stops after SIGTERM even when its polling loop swallowed arq's one cancel, as
``asyncio.wait_for`` does on Python 3.11 when the cancel lands as a Redis reply arrives
(CPython gh-86296)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from arq import Worker

from worker.testing.inprocess import running

STOP_WITHIN_SECONDS = 10


def _swallow_the_first_cancel(worker: Worker) -> asyncio.Event:
    """From its first heart beat, the worker's polling loop swallows one cancellation."""
    swallowing = asyncio.Event()
    beat = worker.heart_beat

    async def heart_beat() -> None:
        if not swallowing.is_set():
            swallowing.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)
            current = asyncio.current_task()
            assert current is not None
            current.uncancel()  # what gh-86296 leaves: no cancellation pending
        await beat()

    worker.heart_beat = heart_beat  # type: ignore[method-assign]
    return swallowing


async def test_sigterm_stops_a_worker_whose_polling_loop_swallowed_the_cancel(harness):
    worker = harness.worker(burst=False, poll_delay=0.01)
    swallowing = _swallow_the_first_cancel(worker)
    async with running(worker) as run:
        await asyncio.wait_for(swallowing.wait(), STOP_WITHIN_SECONDS)
        worker.handle_sig(signal.SIGTERM)
        await asyncio.wait({run.task}, timeout=STOP_WITHIN_SECONDS)
        assert run.task.done(), "the worker polled on after SIGTERM"
        assert worker.main_task is not None
        assert worker.main_task.cancelled()
