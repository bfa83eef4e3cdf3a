"""The OpenAPI schema, with each enqueue route's body described by its job's payload
schema: the route reads a plain object and checks it as the CLI does (with the worker's
defaults for the fields a producer may leave out), so FastAPI cannot derive it. And its
browsable page, ``/docs``: FastAPI's Swagger UI, served from the package (its files vendored
in ``worker/web/static``, so that it works offline), under a policy of its own; and the
console's icon at ``/favicon.ico``."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response

from worker.registry import JOBS, Job

REF = "#/components/schemas/{model}"
SWAGGER_JS = "/static/swagger-ui-bundle.js"
SWAGGER_CSS = "/static/swagger-ui.css"
FAVICON = "/favicon.ico"
ICON_FILE = Path(__file__).parent / "static" / "favicon.svg"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def install(app: FastAPI) -> None:
    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            _describe_payloads(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]  # FastAPI's documented override
    body, policy = docs_page(app.openapi_url or "/openapi.json", f"{app.title}: the HTTP API")
    headers = {"Content-Security-Policy": policy}
    app.add_api_route("/docs", lambda: HTMLResponse(body, headers=headers), include_in_schema=False)
    icon = ICON_FILE.read_bytes()
    cached = {"Cache-Control": "public, max-age=86400"}
    # Browsers ask for /favicon.ico whatever the page links; an SVG answers them all.
    app.add_api_route(
        FAVICON,
        lambda: Response(icon, media_type="image/svg+xml", headers=cached),
        include_in_schema=False,
    )


def docs_page(openapi_url: str, title: str) -> tuple[str, str]:
    """Swagger UI as FastAPI serves it, its script and style from the package rather than
    a CDN, and the policy that lets it run: its own inline script, known by its hash, and
    nothing from elsewhere."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=SWAGGER_JS,
        swagger_css_url=SWAGGER_CSS,
        swagger_favicon_url=FAVICON,
    )
    body = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in INLINE_SCRIPT.findall(body)
    )
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' {hashes}",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )
    return body, policy


def payload_schema(job: Job[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job's payload as JSON Schema, and the models it refers to."""
    body = job.schema.model_json_schema(ref_template=REF)
    models = body.pop("$defs", {})
    optional = set(job.defaults) | ({job.job_id_field} if job.job_id_field else set())
    required = [name for name in body.get("required", []) if name not in optional]
    body["required"] = required
    if not required:
        body.pop("required")
    return body, models


def _describe_payloads(document: dict[str, Any]) -> None:
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for job in JOBS.values():
        operation = document["paths"].get(f"/api/enqueue/{job.name}", {}).get("post")
        if operation is None:
            continue
        body, models = payload_schema(job)
        components.update(models)
        components[job.schema.__name__] = body
        content = {"application/json": {"schema": {"$ref": REF.format(model=job.schema.__name__)}}}
        operation["requestBody"] = {"required": True, "content": content}
