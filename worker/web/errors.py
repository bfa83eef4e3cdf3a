"""Every refusal as one JSON shape (``{"error": {"type", "message", "problems"?}}``) on the
API, and as a page on the dashboard; a lost service is a 503 that names it, never its URL."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from domain.errors import Conflict, DomainError, NotFound
from worker.errors import problems
from worker.operations import Refused
from worker.status import UnknownJob, UnreadableData

log = logging.getLogger("worker.web")
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

    @app.exception_handler(DomainError)
    async def domain_refusal(request: Request, error: DomainError) -> Response:
        status = 404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict) else 422
        return refusal(request, status, str(error))

    @app.exception_handler(OSError)
    async def lost_service(request: Request, error: OSError) -> Response:
        return await _unavailable(request, error)

    from redis.exceptions import RedisError
    from sqlalchemy.exc import InterfaceError, OperationalError

    for lost in (RedisError, OperationalError, InterfaceError):
        app.add_exception_handler(lost, _unavailable)


async def _unavailable(request: Request, error: Exception) -> Response:
    from redis.exceptions import RedisError

    service = "Redis" if isinstance(error, RedisError) else "the database"
    log.warning(
        "%s %s: %s unavailable (%s)",
        request.method,
        request.url.path,
        service,
        type(error).__name__,
    )
    return refusal(request, 503, f"{service} is unavailable; try again shortly")
