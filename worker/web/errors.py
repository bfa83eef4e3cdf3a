"""Every refusal as one JSON shape (``{"error": {"type", "message", "problems"?}}``) on the
API, and as a page on the dashboard; a lost service is a 503 that names it, never its URL.
A console too busy to answer (every heavy-read slot or database connection taken, a read
past the statement timeout) is a 503 with ``Retry-After``, logged as a warning line."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from domain.db import sqlstate
from domain.errors import Conflict, DomainError, NotFound
from worker.arq_jobs import UnreadableData
from worker.ops.actions import NotReplicated, Refused
from worker.ops.job_state import UnknownJob
from worker.text import problems
from worker.web.budget import Busy

log = logging.getLogger("worker.web")
RETRY_AFTER_SECONDS = 2
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement past statement_timeout
# A flood of busy answers (hundreds a second) logs one line per kind per this many seconds.
WARN_EVERY_SECONDS = 10.0
TYPES = {400: "bad_input", 401: "unauthorized", 403: "forbidden", 404: "not_found"}
TYPES.update({405: "method_not_allowed", 408: "timeout", 409: "conflict", 413: "too_large"})
TYPES.update({422: "bad_input", 503: "unavailable"})


class PayloadRefused(Exception):
    """A payload the job's schema refused: a 422 naming each field, nothing enqueued."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(str(error))
        self.error = error


def refusal(request: Request, status: int, message: str, told: list[str] | None = None) -> Response:
    if not request.scope["path"].startswith("/api"):  # the URL: Host may be anything
        from worker.web.templating import render

        context = {"status": status, "message": message, "problems": told or []}
        return render(request, "error.html", context, status_code=status)
    body: dict[str, Any] = {"type": TYPES.get(status, "error"), "message": message}
    if told is not None:
        body["problems"] = told
    return JSONResponse({"error": body}, status)


def _where(loc: tuple[int | str, ...]) -> str:
    """``("query", "limit")`` as ``limit``; a body's fields by their own path."""
    parts = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc
    return ".".join(str(part) for part in parts) or "input"


def install(app: FastAPI) -> None:
    app.state.now_and_then = NowAndThen()

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError) -> Response:
        told = []
        for item in error.errors()[:10]:
            message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            told.append(f"{_where(tuple(item.get('loc', ())))}: {message}")
        return refusal(request, 422, "invalid input: " + "; ".join(told), told)

    @app.exception_handler(PayloadRefused)
    async def bad_payload(request: Request, error: PayloadRefused) -> Response:
        told = problems(error.error, plain=True)
        return refusal(request, 422, "invalid input: " + "; ".join(told), told)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        response = refusal(request, error.status_code, str(error.detail))
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(UnknownJob)
    async def unknown_job(request: Request, error: UnknownJob) -> Response:
        return refusal(request, 404, str(error))

    @app.exception_handler(UnreadableData)
    async def unreadable(request: Request, error: UnreadableData) -> Response:
        return refusal(request, 409, str(error))

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> Response:
        return refusal(request, 404 if error.kind == "not_found" else 409, error.message)

    @app.exception_handler(NotReplicated)
    async def not_replicated(request: Request, error: NotReplicated) -> Response:
        return _later(request, str(error))

    @app.exception_handler(DomainError)
    async def domain_refusal(request: Request, error: DomainError) -> Response:
        status = 404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict) else 422
        return refusal(request, status, str(error))

    @app.exception_handler(OSError)
    async def lost_service(request: Request, error: OSError) -> Response:
        return await _unavailable(request, error)

    from redis.exceptions import RedisError
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app.add_exception_handler(RedisError, _unavailable)
    app.add_exception_handler(Busy, _busy)
    app.add_exception_handler(PoolTimeout, _busy)
    app.add_exception_handler(DBAPIError, _database_error)


async def _busy(request: Request, error: Exception) -> Response:
    """Every heavy-read slot (``Busy``) or every database connection (the pool's
    ``TimeoutError``) taken for the whole wait."""
    if isinstance(error, Busy):
        _warn(request, "heavy reads", f"every heavy-read slot busy ({error})")
    else:
        wait = request.app.state.settings.console_wait_seconds
        _warn(request, "connections", f"no database connection free within {wait:g} s")
    return _later(request, "the console is busy: try again in a moment")


async def _database_error(request: Request, error: Exception) -> Response:
    from sqlalchemy.exc import InterfaceError, OperationalError

    if sqlstate(error) != QUERY_CANCELED:
        if isinstance(error, OperationalError | InterfaceError):
            return await _unavailable(request, error)
        raise error  # a fault of ours: a 500, with its traceback in the log
    limit = request.app.state.settings.console_statement_timeout
    _warn(request, "statement timeout", f"a statement ran past the statement timeout ({limit:g} s)")
    return _later(
        request,
        f"this read took longer than {limit:g} s and was stopped: ask for less (fewer runs "
        "or buckets, a narrower step range) or try again when the console is less busy",
    )


def _later(request: Request, message: str) -> Response:
    response = refusal(request, 503, message)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class NowAndThen:
    """Warning lines that a flood would repeat (hundreds of busy answers a second): at most
    one per kind per ``every`` seconds, saying how many more there were meanwhile."""

    def __init__(self, every: float = WARN_EVERY_SECONDS) -> None:
        self.every = every
        self._last: dict[str, tuple[float, int]] = {}

    def warn(self, kind: str, line: str) -> None:
        now = time.monotonic()
        last, unsaid = self._last.get(kind, (float("-inf"), 0))
        if now - last < self.every:
            self._last[kind] = (last, unsaid + 1)
            return
        self._last[kind] = (now, 0)
        log.warning("%s%s", line, f" ({unsaid:,} more like it since)" if unsaid else "")


def _warn(request: Request, kind: str, what: str) -> None:
    where = f"{request.method} {request.scope['path']}"  # the URL: Host may be anything
    request.app.state.now_and_then.warn(kind, f"{where}: 503, {what}")


async def _unavailable(request: Request, error: Exception) -> Response:
    from redis.exceptions import RedisError

    service = "Redis" if isinstance(error, RedisError) else "the database"
    _warn(request, service, f"{service} unavailable ({type(error).__name__})")
    return _later(request, f"{service} is unavailable; try again shortly")
