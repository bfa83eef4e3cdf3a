"""JSON on the queue, both ways: pickle would let anyone who can write to Redis run code.

arq stores a failed job's exception as its result; it travels as ``{"__error__": {type,
message}}`` and comes back as a ``JobError`` that keeps both.

Everything a worker writes is bounded, whatever a producer sent: an error message is cut
to ``MAX_MESSAGE_CHARS``, and a result over ``MAX_RESULT_BYTES`` drops the copy of the job's
arguments that arq keeps in it. A job over the worker's payload limit is never parsed: it
reaches the job as an ``OversizedPayload`` marker, which the runner refuses. So does a job
that cannot be read (not JSON, a pickle, not an arq job's shape), as an
``UnreadablePayload``, when the function it names can be read off its first bytes; the
worker refuses the others in the function's stead (``worker.runtime.claiming``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from domain.limits import OMITTED_KEY
from worker.text import capped, first_line

if TYPE_CHECKING:
    pass

ERROR_KEY = "__error__"
MAX_RESULT_BYTES = 64 * 1024
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS

# arq writes a job as {"t":try,"f":function,"a":args,"k":kwargs,"et":enqueued_ms}: the
# function name and the enqueue time can be read off the ends of a job too large to parse.
_JOB_HEAD = re.compile(rb'\{"t":(\d+|null),"f":"([A-Za-z0-9_:.\-]{1,100})","a":')
_JOB_TAIL = re.compile(rb',"et":(\d{1,15})\}\s*$')


class JobError(Exception):
    """A job's failure as the producer sees it: the original type name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        self.type_name = type_name
        self.message = message
        super().__init__(f"{type_name}: {message}")


# A job whose id the enqueue that wrote it minted (``worker.ops.enqueue``) says so in its
# envelope, beside arq's fields (a worker of before reads past it). The worker hands the
# mark to the job as a keyword argument, which the job's adapter takes off into its context
# (``worker.main``): no other enqueue can have used that id, so the first try's ledger row
# is written without looking for one of an earlier enqueue in every day of the history.
MINTED_KEY = "minted"
MINTED_KWARG = "_minted_id"


@dataclass(frozen=True)
class OversizedPayload:
    """Stands in for the arguments of a job too large to parse; the runner refuses it."""

    size: int
    limit: int

    def describe(self) -> str:
        return (
            f"the job is {self.size:,} bytes, over the {self.limit:,}-byte limit "
            "(JOBS_MAX_PAYLOAD_BYTES); it was not parsed"
        )


@dataclass(frozen=True)
class UnreadablePayload:
    """Stands in for the arguments of a job that cannot be read or run; the runner refuses it.

    ``function`` is the function the job named, for a job that names none this worker has.
    """

    reason: str
    function: str | None = None

    def describe(self) -> str:
        return f"{self.reason}; it was not run"


RefusedPayload = OversizedPayload | UnreadablePayload


class Payload(dict[str, Any]):
    """A job's JSON payload, whose repr stays short.

    arq reprs every job's arguments in full for its log line, then keeps 80 characters:
    for a batch of 1,000 metric points that cost more than validating the batch.
    """

    def __repr__(self) -> str:
        return (
            "{" + ", ".join(f"{_brief(key)}: {_brief(value)}" for key, value in self.items()) + "}"
        )


def _brief(value: Any) -> str:
    if isinstance(value, list | dict):
        return f"<{len(value)} {'items' if isinstance(value, list) else 'keys'}>"
    text = repr(value) if not isinstance(value, str) or len(value) <= 40 else repr(value[:37])
    return text if len(text) <= 40 else text[:37] + "..."


def _encode(value: Any) -> Any:
    if isinstance(value, JobError):
        return {ERROR_KEY: {"type": value.type_name, "message": capped(value.message)}}
    if isinstance(value, BaseException):
        return {ERROR_KEY: {"type": type(value).__name__, "message": capped(_message(value))}}
    if isinstance(value, RefusedPayload):
        return {OMITTED_KEY: value.describe()}
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: pass ids and plain values")


def _message(error: BaseException) -> str:
    """arq reports a job it cannot decode as "unable to deserialize job": say why, too."""
    from arq.jobs import SerializationError  # here: a CLI that reads the database skips arq

    if isinstance(error, SerializationError) and error.__cause__ is not None:
        return f"{error}: {error.__cause__}"
    return str(error)


def serialize(data: dict[str, Any]) -> bytes:
    encoded = orjson.dumps(data, default=_encode, option=_OPTIONS)
    if len(encoded) > MAX_RESULT_BYTES and "r" in data:
        return _bounded_result(data, len(encoded))
    return encoded


def serialize_minted(data: dict[str, Any]) -> bytes:
    """A job whose id its enqueue minted: arq's envelope with the mark before ``et`` (which
    stays last, where a job too large to parse is read from)."""
    enqueued = data.pop("et")
    return serialize({**data, MINTED_KEY: True, "et": enqueued})


def _bounded_result(data: dict[str, Any], size: int) -> bytes:
    """A result without arq's copy of the job's arguments, and at worst without its value."""
    note = f"{size:,} bytes of job arguments were not kept with the result"
    slim = {**data, "a": [{OMITTED_KEY: note}], "k": {}}
    encoded = orjson.dumps(slim, default=_encode, option=_OPTIONS)
    if len(encoded) <= MAX_RESULT_BYTES:
        return encoded
    slim["r"] = {OMITTED_KEY: f"a result of {len(encoded):,} bytes was not kept"}
    return orjson.dumps(slim, default=_encode, option=_OPTIONS)


def arguments_omitted(args: Any) -> bool:
    """True when a stored result no longer holds the job's arguments (see ``serialize``)."""
    return (
        isinstance(args, list | tuple)
        and len(args) == 1
        and isinstance(args[0], dict)
        and OMITTED_KEY in args[0]
    )


def deserialize(raw: bytes) -> dict[str, Any]:
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("a job or result must be a JSON object")
    if isinstance(data.get("a"), list):
        data["a"] = [Payload(arg) if isinstance(arg, dict) else arg for arg in data["a"]]
    result = data.get("r")
    if isinstance(result, dict) and set(result) == {ERROR_KEY}:
        error = result[ERROR_KEY] if isinstance(result[ERROR_KEY], dict) else {}
        data["r"] = JobError(str(error.get("type")), str(error.get("message")))
    return data


def job_deserializer(max_bytes: int) -> Callable[[bytes], dict[str, Any]]:
    """The worker's deserializer: a job over ``max_bytes`` is refused before it is parsed."""

    def deserialize_job(raw: bytes) -> dict[str, Any]:
        if len(raw) > max_bytes:
            return _oversized_job(raw, max_bytes)
        try:
            job = _checked_envelope(deserialize(raw))
        except ValueError as problem:  # orjson's JSONDecodeError is one
            return _unreadable_job(raw, problem)
        return _with_mark(job)

    return deserialize_job


def _with_mark(job: dict[str, Any]) -> dict[str, Any]:
    """The envelope's mark of a minted id as a keyword argument; one a producer put among
    the keyword arguments itself is dropped."""
    minted = job.pop(MINTED_KEY, None) is True
    if minted or MINTED_KWARG in job["k"]:
        job["k"] = {name: value for name, value in job["k"].items() if name != MINTED_KWARG}
        if minted:
            job["k"][MINTED_KWARG] = True
    return job


def _unreadable_job(raw: bytes, problem: ValueError) -> dict[str, Any]:
    """The job with its arguments replaced by a marker, when its function can be named;
    else ``problem`` again, for the worker to refuse in the function's stead."""
    function = function_of(raw)
    if function is None:
        raise problem
    tail = _JOB_TAIL.search(raw, max(0, len(raw) - 40))
    enqueued = int(tail[1]) if tail else int(time.time() * 1000)  # arq's timestamp_ms
    marker = UnreadablePayload(why_unreadable(raw, problem))
    return {"t": None, "f": function, "a": [marker], "k": {}, "et": enqueued}


def why_unreadable(raw: bytes, problem: Exception) -> str:
    """Why a job cannot be read, in a sentence."""
    if raw.startswith(b"\x80"):  # pickle's protocol 2 and later
        return "the job is a pickle, which this worker never loads"
    if isinstance(problem, orjson.JSONDecodeError):
        return f"the job is not JSON ({first_line(problem, 200)})"
    return first_line(problem, 200)  # deserialize's and _checked_envelope's refusals


def _checked_envelope(job: dict[str, Any]) -> dict[str, Any]:
    """arq uses a job's envelope outside its own error handling: a try that is not a number
    or a function name that is not text would end the worker, and then the next worker to
    claim the job. Refused here, it fails that job alone."""
    well_typed = (
        isinstance(job.get("f"), str)
        and isinstance(job.get("a"), list)
        and isinstance(job.get("k"), dict)
        and type(job.get("et")) is int
        and (job.get("t") is None or type(job.get("t")) is int)
    )
    if not well_typed:
        raise ValueError("not an arq job: its f, a, k, t or et has the wrong type")
    return job


def function_of(head: bytes) -> str | None:
    """The function named at the start of a serialized job (its first 200 bytes will do)."""
    match = _JOB_HEAD.match(head, 0, 200)
    return match[2].decode() if match else None


def _oversized_job(raw: bytes, limit: int) -> dict[str, Any]:
    """The job with its arguments replaced by a marker, so that the job's own runner records
    the refusal; a blob that does not even look like an arq job is refused outright."""
    marker = OversizedPayload(len(raw), limit)
    head, tail = _JOB_HEAD.match(raw, 0, 200), _JOB_TAIL.search(raw, max(0, len(raw) - 40))
    if head is None or tail is None:
        raise ValueError(marker.describe())
    job_try = None if head[1] == b"null" else int(head[1])
    return {"t": job_try, "f": head[2].decode(), "a": [marker], "k": {}, "et": int(tail[1])}


MAX_RECORDED_PAYLOAD = 64 * 1024  # the history keeps a job's payload up to this size


def recordable_payload(raw: Any, limit: int = MAX_RECORDED_PAYLOAD) -> dict[str, Any] | None:
    """The payload as the history keeps it: a JSON object of at most ``limit`` bytes."""
    if not isinstance(raw, dict):
        return None
    try:
        encoded = orjson.dumps(raw)
    except TypeError:
        return None
    return raw if len(encoded) <= limit else None
