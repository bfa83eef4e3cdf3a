"""A bound on how long a worker waits for a Redis reply, at no cost per command.

Without a bound, a Redis that hangs (stopped, or behind a network that drops packets) keeps
its connections open and blocks a worker forever instead of ending it. redis-py's own
bound, ``socket_timeout``, wraps every send in ``asyncio.wait_for`` (a task per command)
and every read in a timeout: 0.12 ms of a worker's CPU per job, an eighth of its throughput
(bench/, issue 14). Here each connection only notes when it started waiting for a reply,
and one task looks at the busy connections a few times per bound: a connection that has
waited longer is cut, so the command fails as a lost connection would, is retried, and in
the end stops the worker (``worker.bootstrap``) as a timed-out one did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio.connection import AbstractConnection

from worker.runtime.tasks import cancel_and_wait

log = logging.getLogger("worker.redis")
CHECKS_PER_BOUND = 4


class _NotesWaits(AbstractConnection):
    """Stamps the time it started waiting for a reply; None while it waits for none."""

    waiting_since: float | None = None

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        self.waiting_since = time.monotonic()
        try:
            return await super().read_response(*args, **kwargs)
        finally:
            self.waiting_since = None


def noting_waits(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """``connection_class`` (TCP, TLS or Unix socket alike) that notes its waits."""
    if issubclass(connection_class, _NotesWaits):
        return connection_class
    return type(f"Watched{connection_class.__name__}", (_NotesWaits, connection_class), {})


class ReplyWatchdog:
    """Cuts any connection of ``redis`` that has waited more than ``seconds`` for a reply."""

    def __init__(self, redis: ArqRedis, seconds: float) -> None:
        self.pool = redis.connection_pool
        self.seconds = seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Call it while no connection is in use: the existing ones are closed and dropped,
        since redis-py builds each new connection from the pool's class."""
        self.pool.connection_class = noting_waits(self.pool.connection_class)
        await self.pool.disconnect()
        self.pool.reset()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        self._task = asyncio.get_running_loop().create_task(self._watch_forever())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _watch_forever(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / CHECKS_PER_BOUND)
            self.cut_hung()

    def cut_hung(self) -> int:
        """Cut the connections waiting too long; how many were cut."""
        now = time.monotonic()
        cut = 0
        for connection in list(self.pool._in_use_connections):
            since = getattr(connection, "waiting_since", None)
            if since is None or now - since <= self.seconds:
                continue
            writer = getattr(connection, "_writer", None)
            if writer is not None:
                log.warning("no reply from Redis within %gs: dropping the connection", self.seconds)
                writer.transport.abort()  # the waiting read ends as a lost connection
                cut += 1
        return cut
