"""Safe by default: what changes state needs the token (when ``JOBS_CONSOLE_TOKEN`` is set),
and nothing can be changed from another site.

- The API takes ``Authorization: Bearer <token>``.
- The dashboard's forms take a session cookie set by the login form: an HMAC of the token
  (the token itself is never stored in the browser, and changing it ends every session).
- Every form carries a CSRF token equal to a cookie of its own (double submit), and any
  unsafe request whose ``Origin`` (or ``Sec-Fetch-Site``) says another site is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from worker.settings import Settings

CSRF_COOKIE = "dbjobs_csrf"
SESSION_COOKIE = "dbjobs_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
bearer = HTTPBearer(auto_error=False, description="JOBS_CONSOLE_TOKEN, when it is set")
router = APIRouter(include_in_schema=False)


def describe(settings: Settings) -> str:
    if settings.console_token is None:
        return "are open to whoever reaches the console (JOBS_CONSOLE_TOKEN is not set)"
    return "need JOBS_CONSOLE_TOKEN"


def install(app: FastAPI, settings: Settings) -> None:
    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method not in SAFE_METHODS and _cross_site(request):
            return JSONResponse(
                {"error": {"type": "forbidden", "message": "cross-site request refused"}}, 403
            )
        known = request.cookies.get(CSRF_COOKIE)
        request.state.csrf = known or secrets.token_urlsafe(32)
        response = await call_next(request)
        if known is None and "text/html" in response.headers.get("content-type", ""):
            response.set_cookie(
                CSRF_COOKIE,
                request.state.csrf,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


def _cross_site(request: Request) -> bool:
    if request.headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not a browser's cross-site form or fetch: those always send one
    # Host against host: behind a proxy that ends TLS, the scheme seen here is http.
    return urlsplit(origin).netloc != request.headers.get("host", "")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _session_value(token: str) -> str:
    return hmac.new(token.encode(), b"dbjobs console session", hashlib.sha256).hexdigest()


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """For the API's changes of state: the bearer token, when one is set."""
    secret = _settings(request).console_token
    if secret is None:
        return
    if credentials is None or not _same(credentials.credentials, secret.get_secret_value()):
        raise HTTPException(
            401,
            "this call changes state: send Authorization: Bearer <JOBS_CONSOLE_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


def logged_in(request: Request) -> bool:
    secret = _settings(request).console_token
    if secret is None:
        return True
    expected = _session_value(secret.get_secret_value())
    return _same(request.cookies.get(SESSION_COOKIE), expected)


async def checked_form(request: Request) -> None:
    """For the dashboard's forms: the CSRF token, and a session when a token is set."""
    await _check_csrf(request)
    if not logged_in(request):
        raise HTTPException(401, "log in first: this action changes state")


@router.get("/login")
async def login_page(request: Request) -> Response:
    from worker.web.templating import render

    return render(request, "login.html", {"failed": False})


async def _check_csrf(request: Request) -> None:
    form = await request.form()
    given = form.get("csrf")
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie is None or not isinstance(given, str) or not _same(given, cookie):
        raise HTTPException(403, "the form is stale or came from another site: reload the page")


@router.post("/login", dependencies=[Depends(_check_csrf)])
async def login(request: Request, token: Annotated[str, Form(max_length=1000)] = "") -> Response:
    from worker.web.templating import render

    secret = _settings(request).console_token
    if secret is None:
        return RedirectResponse("/", 303)
    if not _same(token, secret.get_secret_value()):
        return render(request, "login.html", {"failed": True}, status_code=401)
    response = RedirectResponse("/", 303)
    response.set_cookie(
        SESSION_COOKIE,
        _session_value(secret.get_secret_value()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", dependencies=[Depends(checked_form)])
async def logout() -> Response:
    response = RedirectResponse("/", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response
