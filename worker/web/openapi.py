"""The OpenAPI schema, with each enqueue route's body described by its job's payload
schema: the route reads a plain object and checks it as the CLI does (with the worker's
defaults for the fields a producer may leave out), so FastAPI cannot derive it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from worker.registry import JOBS, Job

REF = "#/components/schemas/{model}"


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
