"""Three worker processes on 2,000 metric jobs: exactly 2,000 rows, duplicates reported.

2,000 are enough for every process to take its share with 50 jobs in flight each, and
for the repeats to meet their first copies while those run; exactly-once comes from the
job ledger and the metrics' unique key, whatever the count (10,000 took 57 s here, for
nothing more). Throughput is the bench's (``python -m bench``)."""

from __future__ import annotations

import pytest
from arq.constants import result_key_prefix

from tests.support.fleet import (
    Summary,
    enqueue_metrics,
    queue_is_empty,
    report,
    results,
    rows,
    wait_for,
)

pytestmark = pytest.mark.e2e

JOBS = 2_000
AGAIN = 100  # the same points under new job ids, enqueued while the first ones run
REDELIVERED = 100  # the same job ids again, as after a crash between commit and bookkeeping


async def test_three_workers_write_each_metric_exactly_once(workers, pool, session_factory, run_id):
    workers.start_many(3, JOBS_LOG_EACH_JOB="true")  # who ran what, from the log
    first = await enqueue_metrics(pool, run_id, range(JOBS), "metric")
    again = await enqueue_metrics(pool, run_id, range(0, JOBS, JOBS // AGAIN), "metric-again")
    await wait_for(lambda: queue_is_empty(pool), within=240, what="queue drained", interval=0.25)

    outcomes = await results(pool, first + again)
    assert len(outcomes) == JOBS + AGAIN
    assert all(o.success for o in outcomes.values())
    inserted = sum(o.result["inserted"] for o in outcomes.values())
    duplicates = sum(o.result["duplicates"] for o in outcomes.values())
    assert (inserted, duplicates) == (JOBS, AGAIN)
    assert {o.job_try for o in outcomes.values()} == {1}
    stored = await rows(
        session_factory,
        "SELECT count(*), count(DISTINCT step), min(step), max(step) FROM metrics "
        "WHERE run_id = :run AND name = 'loss'",
        run=run_id,
    )
    assert stored == [(JOBS, JOBS, 0, JOBS - 1)]
    serving = [w for w in workers.workers if "record_metric" in w.log and "←" in w.log]
    assert len(serving) == 3  # every process took its share

    redelivered = await redeliver(pool, run_id, first[:REDELIVERED])
    assert all(o.result == {"duplicate": True, "job_id": i} for i, o in redelivered.items())
    await assert_history(session_factory, run_id)
    report(
        Summary(
            scenario=f"3. three workers, {JOBS:,} record_metric jobs",
            jobs_run=JOBS + AGAIN + REDELIVERED,
            faults=f"{AGAIN} repeats under new ids, {REDELIVERED} re-deliveries of done jobs",
            rows_lost=JOBS - stored[0][1],
            rows_doubled=stored[0][0] - stored[0][1],
        )
    )


async def redeliver(pool, run_id: int, job_ids: list[str]) -> dict:
    """Deliver finished jobs again under their own ids (their arq results dropped first)."""
    await pool.delete(*(result_key_prefix + job_id for job_id in job_ids))
    for job_id in job_ids:
        step = int(job_id.rsplit(":", 1)[1])
        payload = {"run_id": run_id, "name": "loss", "step": step, "value": step / 10}
        assert await pool.enqueue_job("record_metric", payload, _job_id=job_id) is not None
    await wait_for(lambda: queue_is_empty(pool), within=30, what="re-deliveries done")
    outcomes = await results(pool, job_ids)
    assert len(outcomes) == len(job_ids)
    return outcomes


async def assert_history(session_factory, run_id: int) -> None:
    history = await rows(
        session_factory,
        "SELECT status, count(*), sum(duplicates), max(tries), min(duration_ms) "
        "FROM job_records WHERE function = 'record_metric' GROUP BY status",
    )
    assert len(history) == 1
    status, count, duplicates, max_tries, min_duration = history[0]
    assert (status, count, duplicates, max_tries) == ("succeeded", JOBS + AGAIN, REDELIVERED, 1)
    assert min_duration >= 0
    assert await rows(
        session_factory, "SELECT count(*) FROM metrics WHERE run_id = :run", run=run_id
    ) == [(JOBS,)]
