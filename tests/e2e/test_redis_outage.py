"""Redis crashes: queued jobs survive (AOF), workers ride out a short outage or exit non-zero.

The behaviour under test (worker.bootstrap.redis_settings): every Redis command retries a lost
connection with backoff for about ``JOBS_REDIS_CONNECT_RETRIES`` steps (0.25 s, 0.5 s,
1 s, 2 s, 2 s...: about 6 s with the default 5); when Redis is still gone after that, the
error ends the worker with a non-zero status for its supervisor to restart it. A busy
worker can also end after a short outage: a connection lost inside arq's ``WATCH`` while
it claims a job is a ``WatchError`` that redis-py does not retry and arq does not catch.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.fleet import (
    Summary,
    enqueue_metrics,
    fleet,
    queue_is_empty,
    report,
    rows,
    wait_for,
)
from tests.support.queue import arq_client as arq_pool
from worker.settings import Settings
from worker.testing.processes import ROOT, service_env

pytestmark = pytest.mark.e2e

QUEUED = 300  # enqueued while no worker runs, then Redis crashes
IN_FLIGHT = 1_000  # being processed when Redis crashes
AFTER = 100  # enqueued once Redis is back
OUTAGE_S = 2.0


async def metric_rows(factory: async_sessionmaker[AsyncSession], run_id: int) -> tuple[int, int]:
    found = await rows(
        factory,
        "SELECT count(*), count(DISTINCT step) FROM metrics WHERE run_id = :run",
        run=run_id,
    )
    return found[0][0], found[0][1]


async def drain(redis_url: str, *, within: float) -> None:
    """Wait until every job in the queue has finished."""
    async with arq_pool(redis_url) as pool:
        await wait_for(lambda: queue_is_empty(pool), within=within, what="queue drained")


async def test_queued_jobs_survive_a_crash_and_an_idle_worker_rides_out_a_short_outage(
    pg_database, session_factory, private_redis, run_id, tmp_path
):
    url = private_redis.url()
    async with arq_pool(url) as pool:
        await enqueue_metrics(pool, run_id, range(QUEUED), "before-crash")
    private_redis.kill()  # SIGKILL: only what the append-only file holds comes back
    private_redis.start()
    async with arq_pool(url) as pool:
        assert await pool.zcard(Settings().queue_name) == QUEUED

    with fleet(service_env(pg_database, url), tmp_path) as workers:
        steady = workers.start(JOBS_LOG_EACH_JOB="true")  # about 6 s of patience (the default)
        fragile = workers.start(JOBS_REDIS_CONNECT_RETRIES="1")  # 0.25 s of patience
        await drain(url, within=60)
        assert await metric_rows(session_factory, run_id) == (QUEUED, QUEUED)

        private_redis.kill()
        await asyncio.sleep(OUTAGE_S)
        private_redis.start()
        assert fragile.wait(timeout=20) != 0  # gave up, and says so to its supervisor
        await asyncio.sleep(1)
        assert steady.process.poll() is None  # rode it out

        async with arq_pool(url) as pool:
            await enqueue_metrics(pool, run_id, range(QUEUED, QUEUED + AFTER), "after-outage")
        await drain(url, within=30)
        assert "after-outage" in steady.log
    assert await metric_rows(session_factory, run_id) == (QUEUED + AFTER, QUEUED + AFTER)
    report(
        Summary(
            scenario="6a. Redis SIGKILLed with jobs queued; idle workers, 2 s outage",
            jobs_run=QUEUED + AFTER,
            faults="2 Redis crashes (AOF, fsync always), one 2 s outage",
            rows_lost=0,
            rows_doubled=0,
            recovery="default worker rode it out; 0.25 s-patience worker exited non-zero",
        )
    )


async def test_redis_crash_while_workers_are_busy_loses_and_doubles_nothing(
    pg_database, session_factory, private_redis, run_id, tmp_path
):
    url = private_redis.url()
    with fleet(service_env(pg_database, url), tmp_path) as workers:
        busy = workers.start_many(2)
        async with arq_pool(url) as pool:
            await enqueue_metrics(pool, run_id, range(IN_FLIGHT), "busy")

        async def some_done() -> bool:
            return (await metric_rows(session_factory, run_id))[0] >= IN_FLIGHT // 5

        await wait_for(some_done, within=60, what="a fifth of the jobs done")
        private_redis.kill()
        crashed_at = time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        private_redis.start()
        async with arq_pool(url) as pool:

            async def drained_under_supervision() -> bool:
                if all(w.process.poll() is not None for w in workers.workers):
                    workers.start()  # what a supervisor does with a worker that gave up
                return await queue_is_empty(pool)

            await wait_for(drained_under_supervision, within=90, what="queue drained", interval=0.2)
        recovered = time.monotonic() - crashed_at
        survivors = sum(w.process.poll() is None for w in busy)
        assert all(w.process.poll() != 0 for w in busy)  # alive, or gave up non-zero
    total, distinct = await metric_rows(session_factory, run_id)
    assert (total, distinct) == (IN_FLIGHT, IN_FLIGHT)
    history = await rows(
        session_factory,
        "SELECT status, count(*) FROM job_records WHERE function = 'record_metric' GROUP BY 1",
    )
    assert history == [("succeeded", IN_FLIGHT)]
    report(
        Summary(
            scenario="6b. Redis SIGKILLed while 2 workers are busy, 2 s outage",
            jobs_run=IN_FLIGHT,
            faults=f"Redis crash mid-run; {survivors} of 2 busy workers rode it out, "
            f"{2 - survivors} exited non-zero",
            rows_lost=IN_FLIGHT - distinct,
            rows_doubled=total - distinct,
            recovery=f"queue drained {recovered:.1f}s after the crash",
        )
    )


async def test_a_frozen_redis_ends_the_worker_instead_of_hanging_it(
    pg_database, session_factory, private_redis, run_id, tmp_path
):
    """A stopped Redis (or one behind a network that drops packets) refuses nothing."""
    url = private_redis.url()
    with fleet(service_env(pg_database, url), tmp_path) as workers:
        worker = workers.start(JOBS_REDIS_SOCKET_TIMEOUT="1", JOBS_REDIS_CONNECT_RETRIES="1")
        private_redis.freeze()
        frozen_at = time.monotonic()
        try:
            status = await asyncio.to_thread(worker.wait, timeout=30)
        finally:
            private_redis.thaw()
        noticed = time.monotonic() - frozen_at
        assert status != 0, worker.log

        async with arq_pool(url) as pool:  # nothing was lost meanwhile
            await enqueue_metrics(pool, run_id, range(3), "after-thaw")
        workers.start()
        await drain(url, within=30)
    assert await metric_rows(session_factory, run_id) == (3, 3)
    report(
        Summary(
            scenario="6c. Redis frozen (SIGSTOP) under an idle worker",
            jobs_run=3,
            faults="Redis stops answering without closing connections",
            rows_lost=0,
            rows_doubled=0,
            recovery=f"worker exited non-zero {noticed:.1f}s after the freeze; "
            "its replacement served the queue",
        )
    )


def test_the_cli_gives_up_on_a_frozen_redis_with_a_clear_message(private_redis):
    private_redis.freeze()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "worker.cli", "status", "some-job"],
            cwd=ROOT,
            env={**os.environ, "REDIS_URL": private_redis.url(), "JOBS_REDIS_SOCKET_TIMEOUT": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        private_redis.thaw()
    assert done.returncode != 0
    assert f"cannot reach Redis at 127.0.0.1:{private_redis.port}/0: no reply within 3 s" in (
        done.stderr
    )
