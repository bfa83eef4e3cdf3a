"""The console's HTTP server: uvicorn, with a bound on slow clients, for ``dbjobs serve`` and
the tests alike; and where it may listen, and which hosts it then answers to.

uvicorn closes a connection idle between requests after ``timeout_keep_alive``, and h11
caps a request's head at 16 KiB; but nothing bounds how long the head takes: a client that
sends its headers a byte at a time (slowloris) holds its connection for ever. Here a
request's head must arrive within ``JOBS_CONSOLE_HEADER_TIMEOUT`` of the connection being
made, or of the previous answer being sent; the body has a deadline of its own
(``worker.web.guards``)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from worker.settings import Settings

KEEP_ALIVE_SECONDS = 5  # uvicorn's default, said here: an idle connection lasts this long
log = logging.getLogger("worker.web")


class HeadDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol (h11), with a deadline on each request's head."""

    head_seconds = 10.0
    _head_timer: asyncio.TimerHandle | None = None
    _answered: object = None  # the request whose answer was the last one sent

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._head_arrived()

    def on_response_complete(self) -> None:
        # Armed before uvicorn starts a pipelined request, which then cancels it at once.
        self._await_head()
        super().on_response_complete()
        self._head_arrived()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._stop_timer()
        self._answered = self.cycle
        self._head_timer = self.loop.call_later(self.head_seconds, self._too_slow)

    def _head_arrived(self) -> None:
        if self.cycle is not self._answered:  # a new request's head has been read
            self._stop_timer()

    def _stop_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        log.info("closed a connection: no request head within %g s", self.head_seconds)
        self.transport.close()


def server_config(
    app: FastAPI, settings: Settings, *, host: str, port: int, log_level: str = "info"
) -> uvicorn.Config:
    protocol = type(
        "HeadDeadline", (HeadDeadline,), {"head_seconds": settings.console_header_timeout}
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        log_level=log_level,
        lifespan="on",
        # The console's own log says what a request did; the access log adds nothing an
        # operator needs and would log every poll of the live overview.
        access_log=False,
        server_header=False,
    )


def needs_token(host: str, settings: Settings) -> bool:
    """Whether the console bound to ``host`` would let whoever reaches it change state:
    beyond loopback, without ``JOBS_CONSOLE_TOKEN``."""
    return not _is_loopback(host) and settings.console_token is None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def answering_to(host: str, settings: Settings) -> Settings:
    """The settings, with the address the console binds among the hosts it answers to: an
    address typed in a browser cannot be re-pointed elsewhere as a name can (0.0.0.0 and
    :: are no address to type)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return settings
    if address.is_unspecified or str(address) in settings.console_allowed_hosts:
        return settings
    allowed = (*settings.console_allowed_hosts, str(address))
    return settings.model_copy(update={"console_allowed_hosts": allowed})
