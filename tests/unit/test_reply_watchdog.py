"""``ReplyWatchdog``: a Redis that accepts connections and never answers cannot hang a caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis
from redis.exceptions import ConnectionError as RedisConnectionError

from worker.runtime.watchdog import ReplyWatchdog, blocking_for, noting_waits

BOUND_S = 0.2
GUARD_S = 30  # only ends a broken test; the watchdog cuts within a bound and a quarter


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A server that reads everything and answers nothing: a frozen Redis, as seen from here."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1024):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_a_command_without_a_reply_fails_as_a_lost_connection(silent_port: int) -> None:
    redis = ArqRedis(host="127.0.0.1", port=silent_port)
    watchdog = ReplyWatchdog(redis, BOUND_S)
    await watchdog.start()
    try:
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(redis.ping(), GUARD_S)
    finally:
        await watchdog.stop()
        await redis.aclose()


async def test_a_connection_waiting_less_than_the_bound_is_left_alone(silent_port: int) -> None:
    redis = ArqRedis(host="127.0.0.1", port=silent_port)
    watchdog = ReplyWatchdog(redis, 3600)
    await watchdog.start()
    ping = asyncio.create_task(redis.ping())
    try:
        await asyncio.sleep(0.2)  # connected, and waiting for its reply
        assert watchdog.cut_hung() == 0
        assert not ping.done()
    finally:
        ping.cancel()
        await watchdog.stop()
        await redis.aclose()


async def test_a_blocking_command_waits_its_time_and_goes_with_a_hung_one(silent_port: int) -> None:
    """The doorbell's BLPOP blocks past the bound by design; once another connection is
    found hung, Redis hangs for it too."""
    # No handshake (CLIENT SETINFO), which the silent server would leave unanswered.
    redis = ArqRedis(host="127.0.0.1", port=silent_port, lib_name=None, lib_version=None)
    watchdog = ReplyWatchdog(redis, 3600)
    await watchdog.start()

    async def wait_on_the_bell() -> None:
        with blocking_for(3600):
            await redis.execute_command("BLPOP", "bell", 3600)  # type: ignore[no-untyped-call]

    blocked = asyncio.create_task(wait_on_the_bell())
    try:
        await asyncio.sleep(0.2)  # connected, and waiting for its reply
        watchdog.seconds = 0.1
        assert watchdog.cut_hung() == 0
        assert not blocked.done()

        ping = asyncio.create_task(redis.ping())
        await asyncio.sleep(0.2)
        assert watchdog.cut_hung() == 2
        for task in (blocked, ping):
            with pytest.raises(RedisConnectionError):
                await asyncio.wait_for(task, GUARD_S)
    finally:
        blocked.cancel()
        await watchdog.stop()
        await redis.aclose()


def test_every_kind_of_connection_is_watched_once() -> None:
    from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

    for kind in (Connection, SSLConnection, UnixDomainSocketConnection):
        watched = noting_waits(kind)
        assert issubclass(watched, kind)
        assert noting_waits(watched) is watched
