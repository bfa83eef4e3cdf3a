"""The queue as a whole, for Prometheus: depth, the oldest ready job, workers alive, the
quarantine's size.

Read from Redis when scraped (no background loop), in a handful of round trips whatever
the queue's depth, and whatever its entries hold, so that any process with a Redis
connection (the console) can serve it:

    from worker.ops.queue_metrics import CONTENT_TYPE, queue_metrics
    Response(await queue_metrics(redis, settings.queue_name), media_type=CONTENT_TYPE)

Depth is not split by function: arq's queue holds job ids only, and the function is in
each job's serialized body, so a split would read every queued job at every scrape (a
million GETs for a million jobs). Each worker's ``dbjobs_jobs_total`` has the function.
The dashboard's overview (``worker.ops.queue_state``) does count waiting jobs by function, over
the first thousand entries only, which is right for a page and wrong for an alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from worker.ops.workers import read_roster
from worker.quarantine import quarantine_key

CONTENT_TYPE = CONTENT_TYPE_LATEST
HEAD_MARGIN = 100  # ready entries looked at beyond the running ones, for the oldest waiting
MAX_RUNNING_LOOKED_AT = 10_000  # whatever heartbeats claim to run, the read stays bounded


@dataclass(frozen=True)
class QueueSnapshot:
    ready: int  # due and waiting for a worker
    running: int  # started on a live worker (their heartbeats' sum)
    deferred: int  # due later: retries backing off, jobs enqueued with a delay
    oldest_ready_age: float  # seconds the longest-waiting ready job has been due; 0: none
    workers_alive: int
    workers_lost: int  # fell silent (stuck or killed) in the last few minutes
    quarantined: int = 0  # records in the queue's quarantine (worker.quarantine)


async def read_snapshot(redis: ArqRedis, queue_name: str) -> QueueSnapshot:
    roster = await read_roster(redis, queue_name)
    running = roster.running
    now = timestamp_ms()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcount(queue_name, "-inf", now)
        pipe.zcount(queue_name, f"({now}", "+inf")
        # A running job stays in the queue until it ends, at the head if it started long
        # ago: the oldest waiting one is among the first `running + margin` due entries.
        looked_at = min(running, MAX_RUNNING_LOOKED_AT) + HEAD_MARGIN
        pipe.zrangebyscore(queue_name, "-inf", now, start=0, num=looked_at, withscores=True)
        pipe.llen(quarantine_key(queue_name))
        due, deferred, head, quarantined = await pipe.execute(raise_on_error=False)
    if isinstance(head, Exception):  # the queue is not a sorted set: a worker moves it aside
        due, deferred, head = 0, 0, []
    return QueueSnapshot(
        ready=max(0, int(due) - running),
        running=running,
        deferred=int(deferred),
        oldest_ready_age=await _oldest_waiting_age(redis, head, now),
        workers_alive=len(roster.live),
        workers_lost=len(roster.lost),
        quarantined=0 if isinstance(quarantined, Exception) else int(quarantined),
    )


async def _oldest_waiting_age(
    redis: ArqRedis, head: list[tuple[bytes, float]], now_ms: int
) -> float:
    if not head:
        return 0.0
    prefix = in_progress_key_prefix.encode()  # any entry, even one that is not UTF-8
    claimed = await redis.mget([prefix + job_id for job_id, _ in head])
    for (_, due_ms), claim in zip(head, claimed, strict=True):
        if claim is None:
            return max(0.0, (now_ms - due_ms) / 1000)
    return 0.0


class _Collector:
    def __init__(self, snapshot: QueueSnapshot) -> None:
        self.snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: the names are fixed below

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        depth = GaugeMetricFamily(
            "dbjobs_queue_jobs",
            "Jobs in the queue: ready (due, waiting for a worker), running, deferred.",
            labels=["state"],
        )
        depth.add_metric(["ready"], snap.ready)
        depth.add_metric(["running"], snap.running)
        depth.add_metric(["deferred"], snap.deferred)
        yield depth
        yield GaugeMetricFamily(
            "dbjobs_queue_oldest_ready_job_age_seconds",
            "How long the longest-waiting ready job has been due; 0 when none waits.",
            value=snap.oldest_ready_age,
        )
        yield GaugeMetricFamily(
            "dbjobs_workers_alive",
            "Workers of the queue whose heartbeat is current.",
            value=snap.workers_alive,
        )
        yield GaugeMetricFamily(
            "dbjobs_quarantine_entries",
            "Queue entries and keys set aside because no worker could serve them (their "
            "records kept, the latest 1,000): see jobs quarantine.",
            value=snap.quarantined,
        )
        yield GaugeMetricFamily(
            "dbjobs_workers_lost",
            "Workers of the queue whose heartbeat stopped without a goodbye (stuck or "
            "killed) in the last few minutes.",
            value=snap.workers_lost,
        )


def exposition(snapshot: QueueSnapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(snapshot))
    return generate_latest(registry)


async def queue_metrics(redis: ArqRedis, queue_name: str) -> bytes:
    """The queue-level metrics of ``queue_name`` in Prometheus' text format."""
    return exposition(await read_snapshot(redis, queue_name))
