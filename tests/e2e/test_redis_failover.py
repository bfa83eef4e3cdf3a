"""Redis Sentinel fails over while workers are busy: a primary, its replica and three
sentinels on loopback (tests/support/sentinels.py), ``REDIS_URL=redis+sentinel://...``.

One crash, two producers. Two worker processes run jobs that write to PostgreSQL; one
producer enqueues them waiting for the replica (``JOBS_ENQUEUE_REPLICAS=1``), the other
enqueues as fast as it can without waiting, to a queue no worker serves, so that what the
failover took from it can be counted in Redis. The replica stops receiving (frozen, its
link dropped: a stall, a network blip), each producer is told of at least one batch
meanwhile, and the primary is SIGKILLed. The sentinels promote the replica; the workers'
and producers' connections ask them again on each reconnection try and follow it; the CLI
and the console do too. What the replica had not received is gone: the jobs the second
producer was told of in that window (and whatever else the replica lagged). The first
producer was told of none of its own: every job it was told of runs, its effect written
once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import redis
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.fleet import Fleet, Summary, fleet, queue_is_empty, report, rows, wait_for
from tests.support.job_trace import account_for
from tests.support.sentinels import SentinelGroup, sentinel_group
from worker.bootstrap import open_pool
from worker.lanes import lane_queues
from worker.ops.actions import NotReplicated
from worker.ops.enqueue import ReplicaAck, enqueue_many
from worker.redis_connection import close_sentinels
from worker.registry import RECORD_METRIC
from worker.settings import Settings
from worker.testing.processes import ROOT, service_env
from worker.web.app import create_app

pytestmark = pytest.mark.e2e

JOBS = 600
BATCH = 10
PAUSE_S = 0.02  # between batches: 500 jobs a second at most, enqueued through the failover
# Patience of every Redis command (backoff 0.25, 0.5, 1, 2, 2... s): about 12 s, well
# past the 2 to 4 s a failover takes here (a second to notice, then the election).
RETRIES = "8"

UNSERVED = "failover:unserved"  # the unwaited producer's queue: no worker takes from it
FAST_BATCH = 50
AFTER_CRASH = 500  # jobs the unwaited producer enqueues on the new primary
SHOWN = 10  # jobs shown in the evidence of a failure


@pytest.fixture
def group(redis_server_binary: str) -> Iterator[SentinelGroup]:
    with sentinel_group() as started:
        yield started


class Producer:
    """Enqueues ``JOBS`` record-metric jobs in batches, each acknowledged by a replica; a
    batch not acknowledged (the replica cut off, or none yet) is enqueued again under the
    same ids."""

    def __init__(self, pool: ArqRedis, run_id: int, ack: ReplicaAck) -> None:
        self.pool, self.run_id, self.ack = pool, run_id, ack
        self.acknowledged = 0
        self.refusals: list[str] = []

    async def run(self) -> None:
        for start in range(0, JOBS, BATCH):
            steps = range(start, start + BATCH)
            payloads = [
                {"run_id": self.run_id, "name": "loss", "step": s, "value": s} for s in steps
            ]
            ids = [f"failover:{s}" for s in steps]
            while True:
                try:
                    await enqueue_many(
                        self.pool, RECORD_METRIC.name, payloads, ids, replicas=self.ack
                    )
                    break
                except (NotReplicated, RedisError) as refused:
                    self.refusals.append(f"{start}: {type(refused).__name__}")
                    await asyncio.sleep(0.2)
            self.acknowledged += BATCH
            await asyncio.sleep(PAUSE_S)


class UnwaitedProducer:
    """Enqueues as fast as it can, told of each batch as soon as the primary has it; each
    batch noted with when it was sent, and ids never sent again."""

    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool
        self.acknowledged: list[str] = []
        self.sent_at: list[float] = []  # time.monotonic() each acknowledged batch was sent
        self.stop_at: int | None = None  # stop once that many are acknowledged

    async def run(self) -> None:
        step = 0
        while self.stop_at is None or len(self.acknowledged) < self.stop_at:
            steps = range(step, step + FAST_BATCH)
            ids = [f"fast:{n}" for n in steps]
            payloads = [{"run_id": 1, "name": "loss", "step": n, "value": n} for n in steps]
            sent = time.monotonic()
            await enqueue_many(self.pool, RECORD_METRIC.name, payloads, ids, queue_name=UNSERVED)
            self.acknowledged += ids
            self.sent_at += [sent] * FAST_BATCH
            step += FAST_BATCH

    def sent_since(self, moment: float) -> list[str]:
        return [job for job, at in zip(self.acknowledged, self.sent_at, strict=True) if at > moment]


@asynccontextmanager
async def console_on(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The console (its lifespan opens its pool once), asked in-process."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


async def metric_rows(factory: async_sessionmaker[AsyncSession], run_id: int) -> tuple[int, int]:
    found = await rows(
        factory,
        "SELECT count(*), count(DISTINCT step) FROM metrics WHERE run_id = :run",
        run=run_id,
    )
    return found[0][0], found[0][1]


@dataclass
class Witness:
    """What the servers and workers of the test say, for the evidence of a failure."""

    group: SentinelGroup
    workers: Fleet

    def logs(self) -> list[str]:
        return [worker.log for worker in self.workers.workers]

    def failovers(self) -> int:
        """How many times the first sentinel switched primaries: 1, unless the new primary
        was itself taken for dead (a loaded machine) and the old one promoted back."""
        log = self.group.sentinels[0].directory / "sentinel.log"
        return log.read_text(errors="replace").count("+switch-master")

    def said(self) -> str:
        return f"{self.failovers()} failover(s)"


async def missing_jobs(
    factory: async_sessionmaker[AsyncSession], pool: ArqRedis, run_id: int, witness: Witness
) -> str:
    """The jobs without their metric row, each with what the new primary, the history and
    the workers' logs say of it: the evidence a failure shows."""
    written = await rows(factory, "SELECT step FROM metrics WHERE run_id = :run", run=run_id)
    missing = sorted(set(range(JOBS)) - {step for (step,) in written})
    if not missing:
        return "none missing"
    ids = [f"failover:{step}" for step in missing]
    return f"{len(ids)} missing, {witness.said()}:\n" + await account_for(
        pool, factory, ids[:SHOWN], witness.logs()
    )


async def drain(
    pool: ArqRedis, factory: async_sessionmaker[AsyncSession], witness: Witness
) -> None:
    """Until no lane holds a job; else fail showing the jobs left."""
    try:
        await wait_for(lambda: queue_is_empty(pool), within=120, what="queue drained")
    except AssertionError as stuck:
        left = [job.decode() for queue in lane_queues(Settings().queue_name)
                for job in await pool.zrange(queue, 0, SHOWN - 1)]  # fmt: skip
        shown = await account_for(pool, factory, left[:SHOWN], witness.logs())
        raise AssertionError(f"{stuck}, {witness.said()}:\n{shown}") from None


def cut_off_replica(group: SentinelGroup) -> float:
    """The replica stops receiving: frozen, and its link dropped by the primary, so that
    nothing written from now on reaches it. When that was."""
    group.replica.freeze()
    with redis.Redis(port=group.primary.port, socket_timeout=5) as primary:
        primary.client_kill_filter(_type="slave")  # redis-py names replicas so
    return time.monotonic()


def cli_status(url: str, job_id: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": url, "JOBS_REDIS_CONNECT_RETRIES": RETRIES}
    command = [sys.executable, "-m", "worker.cli", "status", job_id, "--json"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


async def held(pool: ArqRedis, job_ids: list[str]) -> set[str]:
    """The jobs among ``job_ids`` the unserved queue holds."""
    scores = await pool.zmscore(UNSERVED, job_ids)
    return {job_id for job_id, score in zip(job_ids, scores, strict=True) if score is not None}


async def test_a_failover_loses_only_what_no_replica_acknowledged(
    group, pg_database, session_factory, run_id, tmp_path
):
    url = group.url()
    # Short leases: a job running when the primary died, its lease copied to the new one,
    # is taken again a few seconds later (its first delivery may have written it already).
    # Each job's lines in the log: a job without its row is shown with them.
    env = service_env(
        pg_database,
        url,
        JOBS_REDIS_CONNECT_RETRIES=RETRIES,
        JOBS_LEASE_SECONDS="4",
        JOBS_LOG_EACH_JOB="true",
    )
    settings = Settings(
        redis_url=url,
        database_url=pg_database,
        redis_connect_retries=int(RETRIES),
        enqueue_replicas=1,
        enqueue_replica_timeout=1,
        _env_file=None,  # type: ignore[call-arg]
    )
    ack = ReplicaAck.of(settings)
    assert ack is not None
    async with console_on(settings) as console:
        assert (await console.get("/api/queue")).status_code == 200
        with fleet(env, tmp_path) as workers:
            busy = workers.start_many(2)
            pool, fast_pool = await open_pool(settings), await open_pool(settings)
            producer, unwaited = Producer(pool, run_id, ack), UnwaitedProducer(fast_pool)
            producing = asyncio.create_task(producer.run())
            racing: asyncio.Task[None] | None = None

            async def mid_load() -> bool:
                done = (await metric_rows(session_factory, run_id))[0]
                return done > 0 and producer.acknowledged >= JOBS // 4

            async def told_since(moment: float) -> bool:
                return bool(unwaited.sent_since(moment))

            try:
                await wait_for(
                    mid_load, within=60, what="a quarter of the jobs enqueued, some done"
                )
                racing = asyncio.create_task(unwaited.run())
                await wait_for(lambda: told_since(0), within=10, what="the racing producer told")
                cut_off = cut_off_replica(group)
                await wait_for(lambda: told_since(cut_off), within=10, what="a batch told after")
                window = unwaited.sent_since(cut_off)  # the replica can have none of them
                group.primary.kill()
                killed_at = time.monotonic()
                group.replica.thaw()
                enqueued_before, crashed_at_count = (
                    producer.acknowledged,
                    len(unwaited.acknowledged),
                )
                unwaited.stop_at = crashed_at_count + AFTER_CRASH
                await asyncio.to_thread(group.wait_for_failover)
                promoted = time.monotonic() - killed_at
                # Counted before the old primary returns: no second failover can undo it.
                await asyncio.wait_for(racing, timeout=60)
                kept = await held(fast_pool, unwaited.acknowledged)
            except BaseException:
                for task in (producing, racing):
                    if task is not None:
                        task.cancel()
                raise
            group.rejoin_as_replica()  # a replica again, for the producer's acks

            await asyncio.wait_for(producing, timeout=120)
            witness = Witness(group, workers)
            await drain(pool, session_factory, witness)
            drained = time.monotonic() - killed_at
            evidence = await missing_jobs(session_factory, pool, run_id, witness)
            for opened in (pool, fast_pool):
                await opened.aclose()
                await close_sentinels(opened)
            assert all(worker.process.poll() is None for worker in busy)  # they followed

        # The console's pool and a new CLI process follow the new primary too.
        assert (await console.get("/api/queue")).status_code == 200
    status = await asyncio.to_thread(cli_status, url, "failover:0")
    assert status.returncode == 0, status.stderr
    assert '"state": "succeeded"' in status.stdout.replace('":"', '": "')

    # Without replica acks: what the replica never received is gone, and only that.
    lost = [job for job in unwaited.acknowledged if job not in kept]
    assert set(window) <= set(lost), (len(window), len(lost))
    # The batch whose reply was on its way as the primary died is told after the crash.
    assert set(lost) <= set(unwaited.acknowledged[: crashed_at_count + FAST_BATCH])

    total, distinct = await metric_rows(session_factory, run_id)
    assert (producer.acknowledged, total, distinct) == (JOBS, JOBS, JOBS), evidence
    history = await rows(
        session_factory,
        "SELECT status, count(*) FROM job_records WHERE function = :f GROUP BY 1",
        f=RECORD_METRIC.name,
    )
    assert history == [("succeeded", JOBS)], evidence
    switched = witness.failovers()
    report(
        Summary(
            scenario="7a. Redis primary SIGKILLed mid-load, its replica cut off just before; "
            "Sentinel fails over (2 workers, producer with replica acks)",
            jobs_run=JOBS,
            faults=f"primary crash after {enqueued_before} enqueued; replica promoted "
            f"{promoted:.1f}s after it; {len(producer.refusals)} enqueue tries unacknowledged, "
            f"retried; {switched} failover(s)",
            rows_lost=JOBS - distinct,
            rows_doubled=total - distinct,
            recovery=f"queue drained {drained:.1f}s after the crash; workers stayed up",
        )
    )
    report(
        Summary(
            scenario="7b. The same crash, a producer without replica acks (as fast as it can)",
            jobs_run=len(unwaited.acknowledged),
            faults=f"primary crash after {crashed_at_count} enqueued, {len(window)} of them "
            "after the replica was cut off",
            rows_lost=len(lost),
            rows_doubled=0,
            recovery="lost: what the replica had not received; JOBS_ENQUEUE_REPLICAS=1 makes it 0",
        )
    )
