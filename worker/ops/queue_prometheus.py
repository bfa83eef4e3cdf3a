"""The queue as a whole, for Prometheus: ``worker.ops.queue_state``'s read (without the head
of the queue) as gauges: depth by state, the oldest ready job, workers alive and lost, the
quarantine's size.

Read from Redis when scraped (no background loop), in four round trips whatever the queue's
depth, and whatever its entries hold, so that any process with a Redis connection (the
console) can serve it:

    from worker.ops.queue_prometheus import CONTENT_TYPE, read_exposition
    Response(await read_exposition(redis, settings.queue_name), media_type=CONTENT_TYPE)

Depth is not split by function: arq's queue holds job ids only, and the function is in
each job's serialized body, so a split would read every queued job at every scrape (a
million GETs for a million jobs). Each worker's ``dbjobs_jobs_total`` has the function.
"""

from __future__ import annotations

from collections.abc import Iterator

from arq.connections import ArqRedis
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from worker.ops.queue_state import QueueState, read_queue
from worker.ops.workers import LATE, LOST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _Collector:
    def __init__(self, state: QueueState) -> None:
        self.state = state

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: the names are fixed below

    def collect(self) -> Iterator[Metric]:
        state = self.state
        depth = GaugeMetricFamily(
            "dbjobs_queue_jobs",
            "Jobs in the queue: ready (due, waiting for a worker), running, deferred.",
            labels=["state"],
        )
        depth.add_metric(["ready"], state.ready)
        depth.add_metric(["running"], state.running)
        depth.add_metric(["deferred"], state.deferred)
        yield depth
        yield GaugeMetricFamily(
            "dbjobs_queue_oldest_ready_job_age_seconds",
            "How long the longest-waiting ready job has been due; 0 when none waits.",
            value=state.oldest_ready_age,
        )
        rows = state.workers.rows()
        yield GaugeMetricFamily(
            "dbjobs_workers_alive",
            "Workers of the queue whose heartbeat is current.",
            value=sum(row.healthy for row in rows),
        )
        yield GaugeMetricFamily(
            "dbjobs_workers_late",
            "Workers of the queue that missed a heartbeat, not yet lost.",
            value=sum(row.state == LATE for row in rows),
        )
        yield GaugeMetricFamily(
            "dbjobs_quarantine_entries",
            "Queue entries and keys set aside because no worker could serve them (their "
            "records kept, the latest 1,000): see jobs quarantine.",
            value=state.quarantined,
        )
        yield GaugeMetricFamily(
            "dbjobs_workers_lost",
            "Workers of the queue whose heartbeat stopped without a goodbye (stuck or "
            "killed), until an operator dismisses them or they beat again.",
            value=sum(row.state == LOST for row in rows),
        )


def exposition(state: QueueState) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(state))
    return generate_latest(registry)


async def read_exposition(redis: ArqRedis, queue_name: str) -> bytes:
    """The gauges of ``queue_name``, read now, in Prometheus' text format."""
    return exposition(await read_queue(redis, queue_name))
