"""Hostile payloads from a raw arq client cost a worker bounded memory, log and storage.

Each shape is refused once (no retry), recorded in the job history with a capped message
and without its payload, leaves a capped result in Redis, and the worker's peak memory
while it handles the shape stays under a budget; then the worker serves a good job.
Payloads under the worker's limit are parsed and refused by validation, which stops
early; larger ones are refused unparsed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from arq.constants import job_key_prefix, result_key_prefix

from domain.schemas import MAX_BATCH
from tests.support.fleet import Summary, report, results, rows, wait_for
from worker.serialization import MAX_RESULT_BYTES, JobError
from worker.settings import Settings
from worker.text import MAX_MESSAGE_CHARS

pytestmark = pytest.mark.e2e

LIMIT = Settings().max_payload_bytes
QUEUE = Settings().queue_name
# Peak resident memory of one worker handling every shape below in turn. arq reads a job
# whole before anything else can look at it, so the 68 MB job costs about four times its
# size while it is read (Redis's proto-max-bulk-len bounds what can be stored at all);
# parsing stops at the payload limit. Measured: 170-250 MB, 330 MB for the 68 MB job.
MEMORY_BUDGET_MB = 450
LOG_BUDGET_BYTES = 16 * 1024  # what one refused job may add to the worker's log
MESSAGE_CAP = MAX_MESSAGE_CHARS + 40  # the cap, plus its "(N more characters)" note


@dataclass(frozen=True)
class Shape:
    """A ``record_metrics`` payload of ``count`` points, built only when it is sent."""

    case: str
    says: str
    count: int
    unknown_keys: int = 0
    name: str = "loss"

    def payload(self, run_id: int) -> bytes:
        extra = {f"k{key}": 0 for key in range(self.unknown_keys)}
        points = [{"name": self.name, "step": n, "value": 0.5, **extra} for n in range(self.count)]
        return orjson.dumps({"run_id": run_id, "points": points})


SHAPES = [
    # The 908,040 errors: thousands of points with 168 unknown keys each (7.6 MB).
    Shape("unknown-keys", "168 unknown fields", 5_000, unknown_keys=168),
    Shape("unknown-keys-over-limit", "not parsed", 10_000, unknown_keys=168),
    Shape("huge-string", "at most 200 characters", 1, name="x" * (LIMIT - 1024)),
    Shape("huge-string-over-limit", "not parsed", 1, name="x" * 30_000_000),
    Shape("too-many-points", "at most 50000 items", 60_000),
    Shape("well-formed-64-mb", "not parsed", 700_000, name="l" * 60),
]


def raw_job(function: str, payload: bytes) -> bytes:
    """arq's job encoding around an already encoded payload (as a raw client would send)."""
    now = int(time.time() * 1000)
    return b'{"t":1,"f":"%s","a":[%s],"k":{},"et":%d}' % (function.encode(), payload, now)


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def reset_peak_rss(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from VmRSS


async def test_hostile_payloads_cost_bounded_memory_and_are_refused_once(
    workers, pool, session_factory, run_id
):
    worker = workers.start()
    await _serve_a_good_job(pool, run_id, step=0)
    peaks = {"largest-valid-batch": await _largest_valid_batch(pool, worker.pid, run_id)}
    for shape in SHAPES:
        job_id = f"hostile:{shape.case}"
        job = raw_job("record_metrics", shape.payload(run_id))
        size = len(job)
        log_before = len(worker.log.encode())
        reset_peak_rss(worker.pid)
        rss_before = peak_rss_mb(worker.pid)
        await pool.psetex(job_key_prefix + job_id, 600_000, job)
        await pool.zadd(QUEUE, {job_id: int(time.time() * 1000)})
        del job

        async def finished(job_id: str = job_id) -> bool:
            return job_id in await results(pool, [job_id])

        await wait_for(finished, within=60, what=f"{shape.case} refused")
        peaks[shape.case] = peak_rss_mb(worker.pid)
        growth = peaks[shape.case] - rss_before
        print(
            f"{shape.case:24} {size / 1e6:5.1f} MB: peak {peaks[shape.case]:.0f} MB ({growth:+.0f})"
        )
        await _assert_refused_once(pool, session_factory, job_id, shape)
        assert len(worker.log.encode()) - log_before < LOG_BUDGET_BYTES, shape.case
        assert peaks[shape.case] < MEMORY_BUDGET_MB, f"{shape.case}: {peaks[shape.case]:.0f} MB"
        await _serve_a_good_job(pool, run_id, step=len(peaks))
    assert "↻ hostile:" not in worker.log  # nothing was retried
    report(
        Summary(
            scenario="8. hostile payloads (unknown-key floods, huge strings, 64 MB)",
            jobs_run=2 * len(peaks),
            faults=f"{len(SHAPES)} hostile jobs, {LIMIT:,}-byte payload limit",
            rows_lost=0,
            rows_doubled=0,
            recovery=f"each failed on try 1; worker peak {max(peaks.values()):.0f} MB "
            f"(budget {MEMORY_BUDGET_MB}); the next good job succeeded",
        )
    )


async def _largest_valid_batch(pool, pid: int, run_id: int) -> float:
    """The worker's peak while it stores a full batch just under the payload limit."""
    name = "n" * 128
    batch = [{"name": name, "step": step, "value": 0.5} for step in range(MAX_BATCH)]
    payload = {"run_id": run_id, "points": batch}
    assert LIMIT - 1024 * 1024 < len(orjson.dumps(payload)) < LIMIT
    reset_peak_rss(pid)
    job = await pool.enqueue_job("record_metrics", payload)
    assert job is not None
    assert (await job.result(timeout=60))["inserted"] == MAX_BATCH
    peak = peak_rss_mb(pid)
    print(f"{'largest-valid-batch':24} {LIMIT / 1e6:5.1f} MB: peak {peak:.0f} MB")
    assert peak < MEMORY_BUDGET_MB
    return peak


async def _assert_refused_once(pool, session_factory, job_id: str, shape: Shape) -> None:
    outcome = (await results(pool, [job_id]))[job_id]
    assert not outcome.success
    assert outcome.job_try == 1
    error = outcome.result
    assert isinstance(error, JobError)
    assert error.type_name == "InvalidPayload"
    assert shape.says in error.message
    assert len(error.message) <= MESSAGE_CAP
    stored = await pool.get(result_key_prefix + job_id)
    assert len(stored) <= MAX_RESULT_BYTES
    assert not await pool.exists(job_key_prefix + job_id)  # the payload is gone from Redis
    history = await rows(
        session_factory,
        "SELECT status, tries, error_type, length(error_message), payload IS NULL "
        "FROM job_records WHERE job_id = :job_id",
        job_id=job_id,
    )
    assert len(history) == 1
    status, tries, error_type, message_length, payload_dropped = history[0]
    assert (status, tries, error_type, payload_dropped) == ("failed", 1, "InvalidPayload", True)
    assert message_length <= MESSAGE_CAP


async def _serve_a_good_job(pool, run_id: int, *, step: int) -> None:
    good = await pool.enqueue_job(
        "record_metric", {"run_id": run_id, "name": "after", "step": step, "value": 1.0}
    )
    assert good is not None
    assert (await good.result(timeout=30))["inserted"] == 1
