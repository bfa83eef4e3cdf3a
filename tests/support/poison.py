"""Every shape of Redis entry that once stopped a worker or the console, planted by hand
between good jobs: ids that are not text, keys of the wrong type, data that is not a job.

Each ``Quarantined`` shape must be moved to the quarantine once; each ``Refused`` one must
fail once and be recorded in the job history under ``function`` with ``says`` in its
error; every good job around them must run.
"""

from __future__ import annotations

import pickle
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.jobs import Job
from arq.utils import timestamp_ms

Plant = Callable[[ArqRedis, bytes], Awaitable[object]]


def job(function: object, *args: object, t: object = 1, **kwargs: object) -> bytes:
    """An arq job as a raw client writes it (JSON, arq's key order)."""
    return orjson.dumps({"t": t, "f": function, "a": list(args), "k": kwargs, "et": 1})


def metric(run_id: int = 1) -> dict[str, object]:
    return {"run_id": run_id, "name": "loss", "step": 1, "value": 0.5}


async def job_key(redis: ArqRedis, entry: bytes, value: bytes) -> None:
    await redis.set(job_key_prefix.encode() + entry, value, px=600_000)


@dataclass(frozen=True)
class Quarantined:
    entry: bytes
    reason: str
    says: str
    plant: Plant


@dataclass(frozen=True)
class Refused:
    job_id: str
    function: str  # as the job history records it
    says: str
    data: bytes


QUARANTINED = [
    Quarantined(
        b"\xff\xfe-not-utf8", "bad_id", "not UTF-8",
        lambda r, e: job_key(r, e, job("record_metric", metric())),
    ),
    Quarantined(b"nul\x00id", "bad_id", "NUL", lambda r, e: job_key(r, e, job("x"))),
    Quarantined(
        b"hash-job", "wrong_type", "arq:job:hash-job holds a hash",
        lambda r, e: r.hset(job_key_prefix.encode() + e, "f", "record_metric"),
    ),
    Quarantined(
        b"list-claim", "wrong_type", "arq:in-progress:list-claim holds a list, not a claim",
        lambda r, e: r.rpush(in_progress_key_prefix.encode() + e, "claimed?"),
    ),
    Quarantined(
        b"bad-tries", "wrong_type", "arq:retry:bad-tries holds 'many'",
        lambda r, e: r.set(retry_key_prefix.encode() + e, "many"),
    ),
]  # fmt: skip

REFUSED = [
    Refused("unknown-function", "rm_rf", "no job 'rm_rf' is registered", job("rm_rf", {})),
    Refused("not-json", "?", "the job is not JSON", b"hello, worker"),
    Refused("pickle", "?", "a pickle", pickle.dumps({"f": "record_metric", "a": [metric()]})),
    Refused("not-an-object", "?", "must be a JSON object", b'["record_metric", 1]'),
    Refused("wrong-shape", "record_metric", "not an arq job",
            b'{"t":1,"f":"record_metric","a":[{}],"k":[],"et":1}'),
    Refused("args-not-a-list", "?", "not an arq job", b'{"f":"record_metric","a":{}}'),
    Refused("two-payloads", "record_metric", "expected one payload object",
            job("record_metric", metric(), metric())),
    Refused("cron-with-args", "cron:prune_job_history", "takes no arguments",
            job("cron:prune_job_history", {"keep_days": 0})),
    Refused("the-refusal-itself", "(refused)", "no job '(refused)' is registered",
            job("(refused)", {"reason": "forged"})),
    Refused("escapes-in-name", "\x1b[31mred\\u0000", "is registered",
            job("\x1b[31mred\x00", {})),
    Refused("invalid-payload", "record_metric", "run_id",
            job("record_metric", {**metric(), "run_id": "one"})),
]  # fmt: skip


async def plant_poison(
    redis: ArqRedis, queue_name: str, good: Callable[[int], Awaitable[Job]]
) -> list[Job]:
    """Every shape above, each between two good jobs (``good(n)`` enqueues the n-th), all
    due now, in that order; the good jobs."""
    enqueued = [await good(0)]
    shapes: list[tuple[bytes, Callable[[], Awaitable[object]]]] = [
        (q.entry, lambda q=q: q.plant(redis, q.entry)) for q in QUARANTINED
    ]
    shapes += [
        (r.job_id.encode(), lambda r=r: job_key(redis, r.job_id.encode(), r.data)) for r in REFUSED
    ]
    for entry, plant in shapes:
        await plant()
        await redis.zadd(queue_name, {entry: timestamp_ms()})
        enqueued.append(await good(len(enqueued)))
    return enqueued
