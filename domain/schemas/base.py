"""The base of every payload, the bounds of validation and the field types jobs share."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_BATCH = 50_000
# Bounds on how much a bad payload can make validation report (and so allocate): a payload
# of 50,000 points with 168 unknown keys each once made 8.4 million errors and 3.5 GB.
MAX_UNKNOWN_FIELDS_NAMED = 10
VALIDATION_CHUNK = 1000
INT32_MAX = 2_147_483_647

Bio = Annotated[str, StringConstraints(max_length=2000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


def few_unknown(known: Collection[str], data: Any) -> Any:
    """Many unknown fields make one error, not one each (a few are named one by one)."""
    if isinstance(data, dict) and len(data) > len(known) + MAX_UNKNOWN_FIELDS_NAMED:
        unknown = [key for key in data if key not in known]
        if len(unknown) > MAX_UNKNOWN_FIELDS_NAMED:
            named = ", ".join(str(key)[:40] for key in unknown[:MAX_UNKNOWN_FIELDS_NAMED])
            more = len(unknown) - MAX_UNKNOWN_FIELDS_NAMED
            raise ValueError(f"{len(unknown):,} unknown fields: {named} and {more:,} more")
    return data


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=100_000)

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        # __pydantic_fields__, not model_fields: pydantic's property costs 1.4 us a call.
        return few_unknown(cls.__pydantic_fields__, data)


def shifted(error: ValidationError, offset: int, *, unchecked: int) -> ValidationError:
    """The chunk's errors, with item indexes counted from the start of the whole list."""
    details = [
        InitErrorDetails(
            type=item["type"],
            loc=(offset + int(item["loc"][0]), *item["loc"][1:]) if item["loc"] else (),
            input=item["input"],
            ctx=item.get("ctx", {}),
        )
        for item in error.errors(include_url=False)
    ]
    if unchecked > 0:
        stopped = PydanticCustomError("not_checked", f"this and {unchecked - 1:,} more not checked")
        details.append(InitErrorDetails(type=stopped, loc=(offset + VALIDATION_CHUNK,), input=None))
    return ValidationError.from_exception_data(error.title, details)
