"""PostgreSQL restarted mid-run: in-flight jobs fail transiently, back off, finish exactly once."""

from __future__ import annotations

import asyncio
import time

import pytest

from domain.db import create_engine, create_session_factory
from tests.support.fleet import (
    SLOW_WORKER_SETTINGS,
    Summary,
    enqueue_metrics,
    fleet,
    queue_is_empty,
    report,
    results,
    rows,
    slow_starts,
    start_a_run,
    wait_for,
)
from tests.support.queue import arq_client as arq_pool
from worker.testing.processes import service_env

pytestmark = pytest.mark.e2e

HOLDING = 10  # jobs holding an open transaction when the server goes down
STREAM = 400  # quick jobs around the restart
OUTAGE_S = 1.5


async def test_postgres_restart_mid_run_completes_every_job_exactly_once(
    private_postgres, clean_redis, tmp_path
):
    server, database_url = private_postgres
    engine = create_engine(database_url, pool_size=2)
    factory = create_session_factory(engine)
    try:
        run_id = await start_a_run(factory)
        env = service_env(
            database_url, clean_redis.url, JOBS_RETRY_BASE_DELAY="0.2", JOBS_RETRY_MAX_DELAY="2"
        )
        with fleet(env, tmp_path) as workers:
            workers.start_many(2, SLOW_WORKER_SETTINGS)
            async with arq_pool(clean_redis.url) as pool:
                job_ids = await _enqueue_holding(pool, run_id)
                job_ids += await enqueue_metrics(pool, run_id, range(100, 100 + STREAM), "quick")

                async def all_holding() -> bool:
                    return len(await slow_starts(pool)) >= HOLDING

                await wait_for(all_holding, within=30, what="transactions open")
                await asyncio.to_thread(server.stop, "fast")  # ends every session: 57P01
                stopped_at = time.monotonic()
                await asyncio.sleep(OUTAGE_S)
                await asyncio.to_thread(server.start)
                await wait_for(lambda: queue_is_empty(pool), within=90, what="queue drained")
                recovered = time.monotonic() - stopped_at
                outcomes = await results(pool, job_ids)
            logs = "".join(w.log for w in workers.workers)
        assert len(outcomes) == len(job_ids)
        assert all(outcome.success for outcome in outcomes.values())
        assert "hit a transient" in logs
        await _assert_exactly_once(factory, run_id, len(job_ids))
    finally:
        await engine.dispose()
    report(
        Summary(
            scenario="5. PostgreSQL restarted mid-run (fast shutdown, 1.5 s down)",
            jobs_run=len(job_ids),
            faults=f"PostgreSQL restart under {HOLDING} open transactions",
            rows_lost=0,
            rows_doubled=0,
            recovery=f"queue drained {recovered:.1f}s after the stop",
        )
    )


async def _enqueue_holding(pool, run_id: int) -> list[str]:
    ids = [f"holding:{step}" for step in range(HOLDING)]
    for step, job_id in enumerate(ids):
        payload = {"run_id": run_id, "name": "loss", "step": step, "value": 1.0}
        payload |= {"seconds": 5, "later_seconds": 0}
        assert await pool.enqueue_job("slow_metric", payload, _job_id=job_id) is not None
    return ids


async def _assert_exactly_once(factory, run_id: int, jobs: int) -> None:
    stored = await rows(
        factory,
        "SELECT count(*), count(DISTINCT step) FROM metrics WHERE run_id = :run",
        run=run_id,
    )
    assert stored == [(jobs, jobs)]
    history = await rows(
        factory,
        "SELECT job_id, status, tries FROM job_records "
        "WHERE function IN ('slow_metric', 'record_metric')",
    )
    assert len(history) == jobs
    assert {status for _, status, _ in history} == {"succeeded"}
    holding_tries = [tries for job_id, _, tries in history if job_id.startswith("holding:")]
    assert len(holding_tries) == HOLDING
    assert min(holding_tries) >= 2  # each was cut off once, then retried
