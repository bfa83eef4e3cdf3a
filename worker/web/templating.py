"""The dashboard's templates: Jinja2 with autoescaping on for every template, so that text
from the database or Redis (names, errors, job ids) is shown literally, never as markup,
and every value printed passes through ``printable``, so that bidi and control characters
are shown escaped, as the CLI shows them (``\\u202e``), without any template asking."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from worker.text import printable
from worker.web import security

TEMPLATES = Path(__file__).parent / "templates"
REFRESH_SECONDS = 3  # how often live parts of a page are read again


def _time(value: datetime | str | None) -> str:
    """UTC, to the second: ``2026-12-02 04:41:09``."""
    if value is None:
        return "–"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _job_url(job_id: str) -> str:
    return "/jobs/" + quote(job_id, safe="")


def _shown(value: Any) -> Any:
    """What every ``{{ … }}`` prints (Jinja2's ``finalize``), before autoescaping. Markup is
    left alone: a macro's output was made printable inside it, tojson's is ASCII, and
    ``verbatim`` marks text that a form or a script sends back (a hidden job id, a metric's
    name in a data attribute): HTML-escaped, but as stored, or it would name another thing."""
    if value is None or isinstance(value, bool | int | float | Markup):
        return value
    return printable(value, one_line=False)


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    environment.filters.update(
        time=_time, age=_age, pretty=_pretty, job_url=_job_url, verbatim=escape
    )
    environment.globals.update(refresh_seconds=REFRESH_SECONDS, urlencode=urlencode)
    return environment


templates = Jinja2Templates(env=_environment())


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> Response:
    base = {
        "csrf": request.state.csrf,
        "token_required": request.app.state.settings.console_token is not None,
        "logged_in": security.logged_in(request),
        "path": request.scope["path"],
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
