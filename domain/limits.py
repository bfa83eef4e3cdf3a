"""Bounds the payload schemas share with the worker's settings and serialization, and a
generation's chunk count, in a module that imports nothing: those read them without loading
the schemas (pydantic models and e-mail validation, a tenth of a second of a CLI start)."""

# A generation's chunk jobs each hold at least MIN_CHUNK_SIZE profiles, and at most
# MAX_CHUNK_SIZE; the worker's own default chunk size obeys the same bounds.
MIN_CHUNK_SIZE = 100
MAX_CHUNK_SIZE = 50_000
# Points buffered by a client may land a little after its run ended; later ones are refused.
DEFAULT_LATE_METRICS_SECONDS = 300
# Stands in for a value too large to keep (a result in the history, arq's copy of a job's
# arguments in Redis): ``{OMITTED_KEY: "what was left out"}``.
OMITTED_KEY = "__omitted__"


def chunk_count(count: int, chunk_size: int) -> int:
    """The chunk jobs ``count`` profiles split into, ``chunk_size`` each (the last smaller)."""
    return -(-count // chunk_size)
