"""Heavy reads take turns: a read whose cost grows with the metric data (a history, a page
of points, the summaries of a run or of an experiment's runs, and their pages) runs on a
budget of its own, so that any number of them cannot starve the light reads (the queue,
the overview, the job pages) of connections, memory or the event loop.

Why a semaphore and not a second engine: a heavy request costs memory and CPU for all of
its life, from its query to the last byte of its answer (an answer waiting for a slow
client is memory too), not only while it holds a connection. So the slot is held for the
whole request, the answer's sending included, and the pool has ``LIGHT_CONNECTIONS`` more
connections than there are slots: whatever the heavy reads do, the light ones keep those.
A request that finds every slot taken waits a little (the charts of one run page arrive
together), but only so many wait: beyond that, and after the wait, it is answered 503
with ``Retry-After`` at once, costing nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi.routing import APIRoute

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

LIGHT_CONNECTIONS = 5  # a console serves a few operators, not the job traffic
WAITING_PER_SLOT = 8


class Busy(Exception):
    """Every heavy-read slot is taken: the request is refused, nothing was read."""


class ReadBudget:
    """At most ``slots`` heavy reads at once; a few more wait up to ``wait`` seconds."""

    def __init__(self, slots: int, wait: float) -> None:
        self.slots = slots
        self.wait = wait
        self.waiting = 0
        self.running = 0
        self._free = asyncio.Semaphore(slots)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._free.locked() and self.waiting >= WAITING_PER_SLOT * self.slots:
            raise Busy(f"{self.running} heavy reads running and {self.waiting} waiting")
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait):
                await self._free.acquire()
        except TimeoutError:
            raise Busy(f"no heavy-read slot came free in {self.wait:g} s") from None
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._free.release()


class HeavyRoute(APIRoute):
    """A route served on the console's heavy-read budget, for the whole request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        budget: ReadBudget = scope["app"].state.heavy_reads
        async with budget.slot():
            await super().handle(scope, receive, send)
