"""What one worker process counts for Prometheus: its jobs, their durations, its leases.

Every worker exports its own (``worker.runtime.exporter``, on ``JOBS_METRICS_PORT``); the queue
as a whole (depth, oldest ready job, workers alive) is ``worker.ops.queue_prometheus``.

The counting costs a job two pre-bound children (its function's, built once when the worker
is built) and no dictionary look-up of labels: ``JobMeter.measure`` wraps each delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from time import perf_counter
from typing import Any

from arq import Retry
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from worker.quarantine import REASONS
from worker.runtime.summary import TALLY

SUCCEEDED, RETRIED, FAILED, DUPLICATE, CANCELLED = (
    "succeeded",
    "retried",
    "failed",
    "duplicate",
    "cancelled",
)
OUTCOMES = (SUCCEEDED, RETRIED, FAILED, DUPLICATE, CANCELLED)
# Seconds. Most jobs take milliseconds (a metric point ~5 ms, a 10,000-profile chunk ~1 s,
# measured in bench/); the top buckets catch the ones near the 300 s default timeout.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REGISTRY = CollectorRegistry()  # this process's; the console's queue metrics are apart
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, resident memory, open fds

JOBS = Counter(
    "dbjobs_jobs",
    "Job deliveries that ended on this worker, by function and outcome.",
    ["function", "outcome"],
    registry=REGISTRY,
)
DURATION = Histogram(
    "dbjobs_job_duration_seconds",
    "How long one delivery of a job took on this worker, whatever its outcome.",
    ["function"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
RUNNING = Gauge("dbjobs_jobs_running", "Jobs running on this worker now.", registry=REGISTRY)
LEASES_RECOVERED = Counter(
    "dbjobs_leases_recovered",
    "Job claims at the head of the queue this worker cut to one lease, so that a job whose "
    "worker died before starting it runs again within a lease (rarely, a live claim a moment "
    "before its job starts, which loses nothing).",
    registry=REGISTRY,
)
LEASES_LAPSED = Counter(
    "dbjobs_leases_lapsed",
    "Jobs of this worker whose lease lapsed (before it started, or while it ran): such a "
    "job may run twice, which the job ledger absorbs.",
    ["stage"],
    registry=REGISTRY,
)
QUARANTINED = Counter(
    "dbjobs_quarantined",
    "Queue entries and keys this worker set aside instead of serving (worker.quarantine): "
    "an id that is not text (bad_id), a job's keys of the wrong Redis type (wrong_type), "
    "a key the queue shares of the wrong type (shared_key).",
    ["reason"],
    registry=REGISTRY,
)
for _reason in REASONS:  # each series from 0, so that an alert on its rate sees the first
    QUARANTINED.labels(_reason)
HISTORY_SWEPT = Counter(
    "dbjobs_history_swept",
    "Jobs the history said were retrying that this worker's sweep closed as failed: in no "
    "queue, run by no worker, with arq's failed result (arq_failed) or none at all (lost).",
    ["found"],
    registry=REGISTRY,
)
for _found in ("lost", "arq_failed"):
    HISTORY_SWEPT.labels(_found)
STATE = Gauge(
    "dbjobs_worker_state",
    "1 for this worker's state (starting, ready, stopping), 0 for the others.",
    ["state"],
    registry=REGISTRY,
)
WORKER_UP = Gauge(
    "dbjobs_worker_up",
    "1 while this worker is alive (its event loop beats); sum() over targets counts them.",
    registry=REGISTRY,
)


class JobMeter:
    """The pre-bound counters of one function; ``measure`` counts one delivery of it."""

    __slots__ = (
        "_cancelled",
        "_duplicate",
        "_duration",
        "_failed",
        "_function",
        "_retried",
        "_succeeded",
    )

    def __init__(self, function: str) -> None:
        self._function = function
        self._succeeded = JOBS.labels(function, SUCCEEDED)
        self._retried = JOBS.labels(function, RETRIED)
        self._failed = JOBS.labels(function, FAILED)
        self._duplicate = JOBS.labels(function, DUPLICATE)
        self._cancelled = JOBS.labels(function, CANCELLED)
        self._duration = DURATION.labels(function)

    async def measure(
        self, delivery: Awaitable[dict[str, Any]], job_id: object = None
    ) -> dict[str, Any]:
        """Await one delivery (``worker.runtime.delivery.run_job``) and count how it ended,
        here and in the log's summary (``worker.runtime.summary``).

        A duplicate is what ``run_job`` returns for a job that had already succeeded; a
        cancellation is arq's timeout, an abort, or a shutdown that outlived the grace.
        """
        started = perf_counter()
        outcome = FAILED
        try:
            result = await delivery
            outcome = DUPLICATE if result.get("duplicate") is True else SUCCEEDED
        except Retry:
            outcome = RETRIED
            raise
        except asyncio.CancelledError:
            outcome = CANCELLED
            raise
        finally:
            seconds = perf_counter() - started
            self._duration.observe(seconds)
            self._counter(outcome).inc()
            TALLY.ended(outcome, seconds, self._function, job_id)
        return result

    def _counter(self, outcome: str) -> Counter:
        if outcome is SUCCEEDED:
            return self._succeeded
        return {
            DUPLICATE: self._duplicate,
            RETRIED: self._retried,
            CANCELLED: self._cancelled,
            FAILED: self._failed,
        }[outcome]


def job_meter(function: str) -> JobMeter:
    return JobMeter(function)
