"""Safe by default: what changes state needs the token (when ``JOBS_CONSOLE_TOKEN`` is set),
and nothing can be changed from another site.

- The API takes ``Authorization: Bearer <token>``, checked by ``worker.web.guards`` for
  every change of state under ``/api`` before the body is read.
- The dashboard's forms take a session cookie set by the login form (``sessions``): it
  expires, and logging out ends it.
- Every form carries a CSRF token equal to a cookie of its own (double submit), and any
  unsafe request whose ``Origin`` (or ``Sec-Fetch-Site``) says another site is refused.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response, Security
from fastapi.responses import RedirectResponse
from fastapi.security import HTTPBearer
from starlette.requests import HTTPConnection

from worker.settings import Settings
from worker.web import sessions
from worker.web.console import console_of
from worker.web.sessions import SESSION_COOKIE, Session

CSRF_COOKIE = "dbjobs_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
bearer = HTTPBearer(auto_error=False, description="JOBS_CONSOLE_TOKEN, when it is set")
# What a change of state on the API declares, for the OpenAPI schema: the token itself is
# checked before the route runs (a route's dependency would run after FastAPI parsed the
# body), for every unsafe method under /api, so that no route can forget it.
NEEDS_TOKEN = [Security(bearer)]
router = APIRouter(include_in_schema=False)


def describe(settings: Settings) -> str:
    if settings.console_token is None:
        return "are open to whoever reaches the console (JOBS_CONSOLE_TOKEN is not set)"
    return "need JOBS_CONSOLE_TOKEN"


def _settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


def same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def changes_state(connection: HTTPConnection) -> bool:
    return connection.scope["method"] not in SAFE_METHODS


def cross_site(connection: HTTPConnection) -> bool:
    if connection.headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = connection.headers.get("origin")
    if origin is None:
        return False  # not a browser's cross-site form or fetch: those always send one
    # Host against host: behind a proxy that ends TLS, the scheme seen here is http.
    return urlsplit(origin).netloc != connection.headers.get("host", "")


def token_refused(connection: HTTPConnection) -> bool:
    """A change of state on the API without the bearer token, when one is set."""
    secret = _settings(connection).console_token
    if secret is None or not connection.scope["path"].startswith("/api/"):
        return False
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    return scheme.lower() != "bearer" or not same(given.strip(), secret.get_secret_value())


def _session(request: Request) -> Session | None:
    settings = _settings(request)
    if settings.console_token is None:
        return None
    return sessions.read(
        request.cookies.get(SESSION_COOKIE),
        settings.console_token.get_secret_value(),
        settings.console_session_seconds,
    )


def logged_in(request: Request) -> bool:
    """Whether the page shows its user as logged in (a signed session not yet expired)."""
    return _settings(request).console_token is None or _session(request) is not None


async def checked_form(request: Request) -> None:
    """For the dashboard's forms: a live session when a token is set (before the form is
    read), then the CSRF token."""
    if _settings(request).console_token is not None:
        session = _session(request)
        if session is None or await sessions.is_revoked(await console_of(request).queue(), session):
            raise HTTPException(401, "log in first: this action changes state")
    await _check_csrf(request)


@router.get("/login")
async def login_page(request: Request) -> Response:
    from worker.web.templating import render

    return render(request, "login.html", {"failed": False})


async def _check_csrf(request: Request) -> None:
    form = await request.form()
    given = form.get("csrf")
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie is None or not isinstance(given, str) or not same(given, cookie):
        raise HTTPException(403, "the form is stale or came from another site: reload the page")


@router.post("/login", dependencies=[Depends(_check_csrf)])
async def login(request: Request, token: Annotated[str, Form(max_length=1000)] = "") -> Response:
    from worker.web.templating import render

    settings = _settings(request)
    if settings.console_token is None:
        return RedirectResponse("/", 303)
    secret = settings.console_token.get_secret_value()
    if not same(token, secret):
        return render(request, "login.html", {"failed": True}, status_code=401)
    response = RedirectResponse("/", 303)
    response.set_cookie(
        SESSION_COOKIE,
        sessions.issue(secret),
        max_age=settings.console_session_seconds,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", dependencies=[Depends(checked_form)])
async def logout(request: Request) -> Response:
    session = _session(request)
    if session is not None:
        seconds = _settings(request).console_session_seconds
        await sessions.revoke(await console_of(request).queue(), session, seconds)
    response = RedirectResponse("/", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response
