"""The parameters that several routes take, each declared once with its bounds, so that
every route, and the OpenAPI schema, states the same limits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Path, Query
from pydantic import BeforeValidator

from domain import schemas
from worker.web.schemas import NO_NUL, JobId

ID_MAX = 2**63 - 1  # a BIGINT
Id = Annotated[int, Path(ge=1, le=ID_MAX)]
Limit = Annotated[int, Query(ge=1, le=1000)]
PathJobId = Annotated[str, Path(pattern=NO_NUL)]
FormJobId = Annotated[str, Form(min_length=1, max_length=200, pattern=NO_NUL)]
FormJobIds = Annotated[list[JobId], Form(min_length=1, max_length=1000)]
# Where a form on the failed list comes back to: that list (its query kept), nowhere else.
FormBack = Annotated[str | None, Form(max_length=400, pattern=r"^/failed(\?[^\x00#]*)?$")]
FormWorkerId = Annotated[str, Form(min_length=1, max_length=300, pattern=NO_NUL)]
Cursor = Annotated[str | None, Query(max_length=400, description="A page cursor")]


def _blank_is_any(value: Any) -> Any:
    """A filter form's "any" option sends the field empty: no filter, as when it is left out."""
    return None if value == "" else value


# A filter a page's form sends: its "any" option submits it empty.
AnyIfBlank = BeforeValidator(_blank_is_any)
JobState = Annotated[schemas.JobState | None, AnyIfBlank, Query()]
OwnerId = Annotated[int | None, Query(ge=1, le=ID_MAX)]
ExperimentState = Annotated[schemas.ExperimentStatus | None, AnyIfBlank, Query()]
