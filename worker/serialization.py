"""JSON on the queue, both ways: pickle would let anyone who can write to Redis run code.

arq stores a failed job's exception as its result; it travels as ``{"__error__": {type,
message}}`` and comes back as a ``JobError`` that keeps both.
"""

from __future__ import annotations

from typing import Any

import orjson
from arq.jobs import SerializationError

ERROR_KEY = "__error__"


class JobError(Exception):
    """A job's failure as the producer sees it: the original type name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        self.type_name = type_name
        self.message = message
        super().__init__(f"{type_name}: {message}")


class Payload(dict[str, Any]):
    """A job's JSON payload, whose repr stays short.

    arq reprs every job's arguments in full for its log line, then keeps 80 characters:
    for a batch of 1,000 metric points that cost more than validating the batch.
    """

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{key!r}: {_brief(value)}" for key, value in self.items()) + "}"


def _brief(value: Any) -> str:
    if isinstance(value, list | dict):
        return f"<{len(value)} {'items' if isinstance(value, list) else 'keys'}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _encode(value: Any) -> Any:
    if isinstance(value, JobError):
        return {ERROR_KEY: {"type": value.type_name, "message": value.message}}
    if isinstance(value, BaseException):
        return {ERROR_KEY: {"type": type(value).__name__, "message": _message(value)}}
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: pass ids and plain values")


def _message(error: BaseException) -> str:
    """arq reports a job it cannot decode as "unable to deserialize job": say why, too."""
    if isinstance(error, SerializationError) and error.__cause__ is not None:
        return f"{error}: {error.__cause__}"
    return str(error)


def serialize(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, default=_encode, option=orjson.OPT_NON_STR_KEYS)


def deserialize(raw: bytes) -> dict[str, Any]:
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("a job or result must be a JSON object")
    if isinstance(data.get("a"), list):
        data["a"] = [Payload(arg) if isinstance(arg, dict) else arg for arg in data["a"]]
    result = data.get("r")
    if isinstance(result, dict) and set(result) == {ERROR_KEY}:
        error = result[ERROR_KEY]
        data["r"] = JobError(str(error.get("type")), str(error.get("message")))
    return data
