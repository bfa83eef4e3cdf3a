"""What every request meets before any route reads it (a pure ASGI middleware, the app's
outermost), in this order:

1. its ``Host`` is a name the console answers to (``JOBS_CONSOLE_ALLOWED_HOSTS``): a page of
   another site whose name is re-pointed at this address (DNS rebinding) is refused, 400;
2. a body declared larger than the limit is refused before a byte of it is read, 413; one
   sent in chunks is counted as it arrives and refused once over, and one that takes
   longer than ``JOBS_CONSOLE_BODY_TIMEOUT`` to arrive gets a 408;
3. a change of state from another site is refused (``Origin``, ``Sec-Fetch-Site``), 403;
4. a change of state on the API needs the token, before its body is read, 401.

Every answer carries the security headers (a Content-Security-Policy that allows only the
console's own scripts and styles), and a page sets the CSRF cookie its forms need."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets

from fastapi import HTTPException
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.settings import Settings
from worker.web import security
from worker.web.errors import refusal

# The dashboard's forms carry a job id or a token: a page's body is small.
PAGE_BODY_BYTES = 64 * 1024
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    """Whether a Host header (``name``, ``name:port``, ``[v6]:port``) names an allowed host."""
    if "*" in allowed:
        return True
    if not header:
        return False
    if header.startswith("["):
        address, bracket, rest = header[1:].partition("]")
        if not bracket or not (rest == "" or (rest[0] == ":" and _is_port(rest[1:]))):
            return False
        try:
            return str(ipaddress.IPv6Address(address)) in allowed
        except ValueError:
            return False
    name, _, port = header.partition(":")
    return _is_port(port) and name.lower() in allowed


def _is_port(text: str) -> bool:
    """An empty port is the scheme's default (RFC 9110, 4.2.1)."""
    return text == "" or (text.isascii() and text.isdigit() and len(text) <= 5)


class Guard:
    """The checks above, as an ASGI middleware: ``app.add_middleware(Guard, settings=...)``."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.allowed = frozenset(settings.console_allowed_hosts)
        self.api_body_bytes = settings.console_body_limit
        self.body_seconds = settings.console_body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        known = request.cookies.get(security.CSRF_COOKIE)
        request.state.csrf = known or secrets.token_urlsafe(32)
        send = _dressed(send, request, set_csrf=known is None)
        api = scope["path"].startswith("/api/")
        limit = self.api_body_bytes if api else PAGE_BODY_BYTES
        refused = self._refusal(request, limit)
        if refused is not None:
            await refused(scope, receive, send)
            return
        body = _Body(receive, limit, self.body_seconds)
        await self.app(scope, body.receive, send)

    def _refusal(self, request: Request, limit: int) -> Response | None:
        if not host_allowed(request.headers.get("host"), self.allowed):
            told = "the Host header names a host this console does not answer to "
            return refusal(request, 400, told + "(JOBS_CONSOLE_ALLOWED_HOSTS)")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return refusal(request, 413, _too_large(limit))
        if not security.changes_state(request):
            return None
        if security.cross_site(request):
            return refusal(request, 403, "cross-site request refused")
        if security.token_refused(request):
            told = "this call changes state: send Authorization: Bearer <JOBS_CONSOLE_TOKEN>"
            response = refusal(request, 401, told)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None


def _too_large(limit: int) -> str:
    return f"the body is over {limit:,} bytes, the most this console reads here"


class _Body:
    """The request's body as the app reads it: counted, and on a deadline until it ends."""

    def __init__(self, receive: Receive, limit: int, seconds: float) -> None:
        self._receive = receive
        self.limit = limit
        self.seconds = seconds
        self.received = 0
        self.deadline: float | None = None
        self.ended = False

    async def receive(self) -> Message:
        if self.ended:  # from now on, only a disconnect can come
            return await self._receive()
        if self.deadline is None:
            self.deadline = asyncio.get_running_loop().time() + self.seconds
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            told = f"the body took longer than {self.seconds:g} s to arrive"
            raise HTTPException(408, told) from None
        if message["type"] != "http.request":
            self.ended = True
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            raise HTTPException(413, _too_large(self.limit))
        self.ended = not message.get("more_body", False)
        return message


def _dressed(send: Send, request: Request, *, set_csrf: bool) -> Send:
    """``send``, adding the security headers, and the CSRF cookie to a page that needs it."""

    async def dressed(message: Message) -> None:
        if message["type"] == "http.response.start":
            # A copy: a response may be sent again (its headers list is its own).
            message = {**message, "headers": list(message.get("headers", []))}
            headers = MutableHeaders(scope=message)
            for name, value in HEADERS.items():
                headers.setdefault(name, value)
            if set_csrf and "text/html" in headers.get("content-type", ""):
                secure = "; Secure" if request.scope["scheme"] == "https" else ""
                cookie = f"{security.CSRF_COOKIE}={request.state.csrf}; HttpOnly; Path=/"
                headers.append("set-cookie", f"{cookie}; SameSite=strict{secure}")
        await send(message)

    return dressed
