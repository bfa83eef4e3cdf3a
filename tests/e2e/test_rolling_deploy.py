"""A rolling deploy that changes a payload's schema: a worker of today's registry and one of
the next deploy's (``worker.testing.schema_change``: ``record_metric`` at version 2) share
one queue, with producers of both deploys enqueueing meanwhile. Nothing fails, nothing is
written twice, and the history shows each time a job was left for the newer worker."""

from __future__ import annotations

import pytest

from tests.support.fleet import (
    Summary,
    enqueue_metrics,
    queue_is_empty,
    report,
    rows,
    scalar,
    wait_for,
)
from worker.ops.enqueue import enqueue_many
from worker.registry import JOBS, RECORD_METRIC
from worker.testing.schema_change import RECORD_METRIC_NEXT

pytestmark = pytest.mark.e2e

NEXT_WORKER = "worker.testing.schema_change.WorkerSettings"
# Waits of 0.5 s growing to 1 s: the version 2 jobs find the new worker soon once it is
# up; none comes near the end of its grace period, however slow the machine.
GRACE = {"JOBS_PAYLOAD_VERSION_GRACE": "600", "JOBS_PAYLOAD_VERSION_WAIT": "1"}
BATCH = 15


async def enqueue_next(pool, monkeypatch, run_id: int, steps: range, prefix: str) -> list[str]:
    """``record_metric`` jobs from a producer of the next deploy (through ``enqueue_many``,
    which sends the version its registry declares)."""
    with monkeypatch.context() as patched:
        patched.setitem(JOBS, RECORD_METRIC.name, RECORD_METRIC_NEXT)
        payloads = [{"run_id": run_id, "metric": "loss", "step": s, "value": s / 10} for s in steps]
        ids = [f"{prefix}:{step}" for step in steps]
        assert await enqueue_many(pool, RECORD_METRIC.name, payloads, ids) == ids
    return ids


async def test_old_and_new_workers_share_one_queue_through_a_deploy(
    workers, pool, session_factory, run_id, monkeypatch
):
    def count(sql: str):
        return scalar(session_factory, sql)

    async def recorded(status: str, error_type: str | None = None) -> int:
        return await scalar(
            session_factory,
            "SELECT count(*) FROM job_records WHERE function = 'record_metric' "
            "AND status = :status AND error_type IS NOT DISTINCT FROM :error_type",
            status=status,
            error_type=error_type,
        )

    # Before: today's worker, producers of both deploys (the console was upgraded first).
    old = workers.start(**GRACE)
    from_old = await enqueue_metrics(pool, run_id, range(0, BATCH), "old")
    from_new = await enqueue_next(pool, monkeypatch, run_id, range(100, 100 + BATCH), "new")

    async def new_ones_left_for_another_worker() -> bool:
        return await recorded("retrying", "PayloadVersionAhead") == BATCH

    await wait_for(new_ones_left_for_another_worker, within=60, what="version 2 jobs left")
    assert await recorded("succeeded") == BATCH  # today's jobs ran meanwhile

    # During: both workers on the queue, both producers enqueueing.
    new = workers.start(NEXT_WORKER, **GRACE)
    from_old += await enqueue_metrics(pool, run_id, range(200, 200 + BATCH), "old-during")
    from_new += await enqueue_next(pool, monkeypatch, run_id, range(300, 300 + BATCH), "new-during")
    await wait_for(lambda: queue_is_empty(pool), within=90, what="queue drained", interval=0.25)

    # After: today's worker gone, today's producers still sending version 1.
    assert old.stop() == 0
    from_old += await enqueue_metrics(pool, run_id, range(400, 400 + BATCH), "old-after")
    await wait_for(lambda: queue_is_empty(pool), within=60, what="queue drained", interval=0.25)

    jobs = len(from_old) + len(from_new)
    history = await rows(
        session_factory,
        "SELECT status, count(*), max(tries), sum(duplicates) FROM job_records "
        "WHERE function = 'record_metric' GROUP BY status",  # a cron job may run meanwhile
    )
    assert history == [("succeeded", jobs, 1, 0)]  # nothing failed, no try spent on waiting
    stored = await rows(
        session_factory,
        "SELECT count(*), count(DISTINCT step) FROM metrics WHERE run_id = :run AND name = 'loss'",
        run=run_id,
    )
    assert stored == [(jobs, jobs)]
    runners = await rows(
        session_factory,
        "SELECT split_part(job_id, ':', 1), array_agg(DISTINCT worker) FROM job_records "
        "WHERE function = 'record_metric' GROUP BY 1 ORDER BY 1",
    )
    new_worker = f":{new.pid}"
    by_batch = {batch: sorted(w.endswith(new_worker) for w in ws) for batch, ws in runners}
    assert by_batch["new"] == by_batch["new-during"] == [True]  # only the new worker ran v2
    assert by_batch["old"] == [False]
    assert by_batch["old-after"] == [True]  # the new worker upgraded version 1 payloads
    left = await rows(
        session_factory,
        "SELECT DISTINCT try_number, error_type, worker FROM job_tries",
    )
    assert {(t, e) for t, e, _ in left} == {(1, "PayloadVersionAhead")}
    assert {w.endswith(f":{old.pid}") for _, _, w in left} == {True}
    deferrals = await count("SELECT count(*) FROM job_tries")
    assert deferrals >= BATCH
    report(
        Summary(
            scenario="rolling deploy, record_metric v1 -> v2, old and new worker on one queue",
            jobs_run=jobs,
            faults=f"{deferrals} deferrals of v2 jobs by the old worker, 0 failed",
            rows_lost=jobs - stored[0][1],
            rows_doubled=stored[0][0] - stored[0][1],
        )
    )
