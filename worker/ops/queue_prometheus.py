"""The queue as a whole, for Prometheus: ``worker.ops.queue_state``'s read (without the head
of the queue) as gauges: depth by state, the oldest ready job, workers alive and lost, the
quarantine's size.

Read from Redis when scraped (no background loop), in four round trips whatever the queue's
depth, and whatever its entries hold, so that any process with a Redis connection (the
console) can serve it:

    from worker.ops.queue_prometheus import CONTENT_TYPE, read_exposition
    Response(await read_exposition(redis, settings.queue_name), media_type=CONTENT_TYPE)

Depth is split by lane, and every lane and job kind has a ``dbjobs_paused`` gauge. Depth
is not split by function: arq's queue holds job ids only, and the function is in
each job's serialized body, so a split would read every queued job at every scrape (a
million GETs for a million jobs). Each worker's ``dbjobs_jobs_total`` has the function.
"""

from __future__ import annotations

from collections.abc import Iterator

from arq.connections import ArqRedis
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from worker.lanes import LANES
from worker.ops.queue_state import QueueState, read_queue
from worker.ops.workers import LATE, LOST
from worker.registry import JOBS

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
            "records kept, the latest 1,000): see dbjobs quarantine.",
            value=state.quarantined,
        )
        yield from _lanes(state)
        yield GaugeMetricFamily(
            "dbjobs_workers_lost",
            "Workers of the queue whose heartbeat stopped without a goodbye (stuck or "
            "killed), until an operator dismisses them or they beat again.",
            value=sum(row.state == LOST for row in rows),
        )


def _lanes(state: QueueState) -> Iterator[Metric]:
    """Each lane's depth, and 1 for each lane and job kind paused (``worker.ops.controls``)."""
    lanes = GaugeMetricFamily(
        "dbjobs_lane_jobs",
        "Jobs in each lane: due (ready or running) and deferred.",
        labels=["lane", "state"],
    )
    for lane in state.lanes:
        lanes.add_metric([lane.lane, "due"], lane.due)
        lanes.add_metric([lane.lane, "deferred"], lane.deferred)
    yield lanes
    paused = GaugeMetricFamily(
        "dbjobs_paused",
        "1 while a lane or a kind of job is paused on every worker (dbjobs pause), else 0.",
        labels=["kind", "name"],
    )
    for name in LANES:
        paused.add_metric(["lane", name], float(f"lane:{name}" in state.paused))
    for job in JOBS:
        paused.add_metric(["job", job], float(f"job:{job}" in state.paused))
    yield paused


def exposition(state: QueueState) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(state))
    return generate_latest(registry)


async def read_exposition(redis: ArqRedis, queue_name: str) -> bytes:
    """The gauges of ``queue_name``, read now, in Prometheus' text format."""
    return exposition(await read_queue(redis, queue_name))
