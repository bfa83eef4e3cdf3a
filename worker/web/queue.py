"""The queue overview: what waits and runs (Redis), which workers are alive (their
heartbeats), what ended lately (the job history's finished_at index), and what no worker
could serve (the quarantine)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from domain import services
from worker.bootstrap import Services
from worker.ops.queue_state import read_queue
from worker.ops.workers import WorkerBeat, read_roster
from worker.quarantine import read_quarantine
from worker.web.schemas import QuarantinedOut, QueueOverview, RunningJobOut, WorkerOut

MINUTE = 60
HOUR = 3600
QUARANTINE_SHOWN = 10  # the latest records; `jobs quarantine` lists more


async def workers(console: Services) -> list[WorkerOut]:
    now = datetime.now(UTC)
    roster = await read_roster(await console.queue(), console.settings.queue_name)
    # The live ones only, as ever; `jobs health` lists the silent ones too (issue 20).
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
    queue = await read_queue(await console.queue(), console.settings.queue_name)
    quarantine = await read_quarantine(
        await console.queue(), console.settings.queue_name, QUARANTINE_SHOWN
    )
    async with console.unit_of_work() as uow:
        last_minute = await services.recent_counts(uow, MINUTE)
        last_hour = await services.recent_counts(uow, HOUR)
    now = datetime.now(UTC)
    running = [
        RunningJobOut(
            job_id=job.job_id,
            function=job.function,
            worker=job.worker,
            started_at=job.started_at,
            age_seconds=job.age_seconds(now),
        )
        for job in queue.running
    ]
    return QueueOverview(
        total=queue.total,
        ready=queue.ready,
        deferred=queue.deferred,
        waiting_by_function=queue.by_function,
        sampled=queue.sampled,
        unreadable=queue.unreadable,
        quarantined=quarantine.total,
        quarantine=[QuarantinedOut(**asdict(record)) for record in quarantine.latest],
        running=running,
        workers=await workers(console),
        last_minute=last_minute,
        last_hour=last_hour,
        jobs_per_second=round(sum(last_minute.values()) / MINUTE, 2),
    )
