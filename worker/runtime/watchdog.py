"""A bound on how long a worker waits for a Redis reply, at no cost per command.

Without a bound, a Redis that hangs (stopped, or behind a network that drops packets) keeps
its connections open and blocks a worker forever instead of ending it. redis-py's own
bound, ``socket_timeout``, wraps every send in ``asyncio.wait_for`` (a task per command)
and every read in a timeout: 0.12 ms of a worker's CPU per job, an eighth of its throughput
(bench/, issue 14). Here each connection only notes when it started waiting for a reply,
and one task looks at the busy connections a few times per bound: a connection that has
waited longer is cut, so the command fails as a lost connection would, is retried, and in
the end stops the worker (``worker.bootstrap``) as a timed-out one did.

A blocking command (the doorbell's BLPOP, ``worker.runtime.polling``) waits for its reply by
design: sent ``blocking_for(seconds)``, its reply is awaited that much longer. A Redis
that hangs is still found within a bound by the other connections (the heartbeat writes
every few seconds), and once one is cut, the blocked ones are cut with it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio.connection import AbstractConnection

from worker.runtime.tasks import cancel_and_wait

log = logging.getLogger("worker.redis")
CHECKS_PER_BOUND = 4
# How long the command this task sends blocks by design (0: it answers at once).
_BLOCKING_FOR: contextvars.ContextVar[float] = contextvars.ContextVar("blocking", default=0.0)


@contextmanager
def blocking_for(seconds: float) -> Iterator[None]:
    """Commands sent inside it may block ``seconds`` before their reply is overdue."""
    token = _BLOCKING_FOR.set(max(0.0, seconds))
    try:
        yield
    finally:
        _BLOCKING_FOR.reset(token)


class _NotesWaits(AbstractConnection):
    """Stamps the time it started waiting for a reply (pushed back by the time its command
    blocks by design); None while it waits for none."""

    waiting_since: float | None = None
    blocking = False

    async def connect(self) -> None:
        token = _BLOCKING_FOR.set(0.0)  # a handshake's replies are due at once
        try:
            await super().connect()  # type: ignore[no-untyped-call]
        finally:
            _BLOCKING_FOR.reset(token)

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        blocks = _BLOCKING_FOR.get()
        self.waiting_since, self.blocking = time.monotonic() + blocks, blocks > 0
        try:
            return await super().read_response(*args, **kwargs)
        finally:
            self.waiting_since, self.blocking = None, False


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
        """Cut the connections waiting too long, and the blocked ones with them (Redis
        hangs for all); how many were cut."""
        now = time.monotonic()
        waiting = [
            connection
            for connection in list(self.pool._in_use_connections)
            if isinstance(connection, _NotesWaits) and connection.waiting_since is not None
        ]
        hung = [c for c in waiting if now - (c.waiting_since or now) > self.seconds]
        if not hung:
            return 0
        log.warning("no reply from Redis within %gs: dropping the connection", self.seconds)
        blocked = [c for c in waiting if c.blocking and c not in hung]
        return sum(_abort(connection) for connection in hung + blocked)


def _abort(connection: Any) -> bool:
    """End ``connection``'s waiting read as a lost connection would."""
    writer = getattr(connection, "_writer", None)
    if writer is None:
        return False
    writer.transport.abort()
    return True
