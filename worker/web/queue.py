"""The queue overview: what waits and runs, which workers are alive and what no worker
could serve (``worker.ops.queue_state``, its head included), and what ended lately (the job
history's finished_at index)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from domain import services
from worker.bootstrap import Services
from worker.ops.queue_state import MIN_HEAD_DEPTH, QueueHead, read_queue
from worker.ops.workers import Roster, WorkerBeat, read_roster
from worker.web.schemas import QuarantinedOut, QueueOverview, RunningJobOut, WorkerOut

MINUTE = 60
HOUR = 3600


async def workers(console: Services) -> list[WorkerOut]:
    return _workers(await read_roster(await console.queue(), console.settings.queue_name))


def _workers(roster: Roster) -> list[WorkerOut]:
    # The live ones only, as ever; `jobs health` lists the silent ones too (issue 20).
    now = datetime.now(UTC)
    return [_worker(beat, now) for beat in roster.live]


def _worker(beat: WorkerBeat, now: datetime) -> WorkerOut:
    return WorkerOut(
        worker_id=beat.worker_id,
        queue_name=beat.queue_name,
        state=beat.state,
        running=beat.running,
        started_at=beat.started_at,
        beat_at=beat.beat_at,
        seconds_since_beat=round((now - beat.beat_at).total_seconds(), 1),
    )


async def overview(console: Services) -> QueueOverview:
    queue = await read_queue(
        await console.queue(), console.settings.queue_name, head=MIN_HEAD_DEPTH
    )
    head = queue.head
    assert head is not None  # asked for
    async with console.unit_of_work() as uow:
        last_minute = await services.recent_counts(uow, MINUTE)
        last_hour = await services.recent_counts(uow, HOUR)
    return QueueOverview(
        total=queue.total,
        ready=queue.due,
        deferred=queue.deferred,
        waiting_by_function=head.by_function,
        sampled=head.sampled,
        unreadable=head.unreadable,
        quarantined=queue.quarantined,
        quarantine=[QuarantinedOut(**asdict(record)) for record in head.quarantine],
        running=_running(head),
        workers=_workers(queue.workers),
        last_minute=last_minute,
        last_hour=last_hour,
        jobs_per_second=round(sum(last_minute.values()) / MINUTE, 2),
    )


def _running(head: QueueHead) -> list[RunningJobOut]:
    now = datetime.now(UTC)
    return [
        RunningJobOut(
            job_id=job.job_id,
            function=job.function,
            worker=job.worker,
            started_at=job.started_at,
            age_seconds=job.age_seconds(now),
        )
        for job in head.running
    ]
