"""``cancel_and_wait`` ends a task even when the task swallows a cancellation."""

from __future__ import annotations

import asyncio
import contextlib

from worker.runtime.tasks import cancel_and_wait

HOUR = 3600


async def _swallows_one_cancel() -> None:
    # As asyncio.wait_for does on 3.11 when its future completes in the same tick.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(HOUR)
    await asyncio.sleep(HOUR)


async def test_a_task_that_swallows_a_cancel_survives_one_but_not_cancel_and_wait() -> None:
    task = asyncio.create_task(_swallows_one_cancel())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait({task}, timeout=0.2)
    assert not task.done()

    await asyncio.wait_for(cancel_and_wait(task), timeout=5)
    assert task.cancelled()


async def test_a_reader_cancelled_as_its_reply_arrives_is_stopped() -> None:
    """The demo's hang: a read through wait_for, cancelled in the tick its reply lands."""
    replies: asyncio.Queue[asyncio.Future[int]] = asyncio.Queue()

    async def read_forever() -> None:
        while True:
            reply = asyncio.get_running_loop().create_future()
            replies.put_nowait(reply)
            await asyncio.wait_for(reply, timeout=HOUR)

    task = asyncio.create_task(read_forever())
    reply = await replies.get()
    reply.set_result(1)
    await asyncio.wait_for(cancel_and_wait(task), timeout=5)
    assert task.done()


async def test_an_ended_task_is_left_as_it_ended() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(fails())
    await asyncio.wait({task})
    await cancel_and_wait(task)
    assert isinstance(task.exception(), ValueError)
