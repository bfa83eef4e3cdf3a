"""Use cases run on a schedule to keep the data healthy."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain import schemas
from domain.db import utcnow
from domain.services.tracker import settle_experiments
from domain.uow import UnitOfWork
from domain.views import HistoryPruned, StaleRunsFailed

# The prune deletes in statements of PRUNE_BATCH rows, at most PRUNE_BATCHES of them a run:
# after an outage the backlog goes over the next hourly runs instead of one statement and
# one transaction holding every row (a day is ~70,000). Migration 0002 built its indexes
# inside its transaction; it stays as it ran (it is history): the retention by dropping
# partitions replaces this prune.
PRUNE_BATCH = 5_000
PRUNE_BATCHES = 20


async def fail_stale_runs(
    uow: UnitOfWork, payload: schemas.FailStaleRuns, *, now: datetime | None = None
) -> StaleRunsFailed:
    """Fail runs that stayed ``running`` with no metric for longer than the window."""
    now = now or utcnow()
    window = timedelta(seconds=payload.idle_seconds)
    failed = await uow.runs.fail_stale(
        cutoff=now - window, now=now, reason=f"no metric for more than {window}"
    )
    await settle_experiments(uow, {experiment_id: "failed" for _, experiment_id in failed})
    result = StaleRunsFailed(run_ids=[run_id for run_id, _ in failed])
    await uow.commit(result)
    return result


async def prune_job_history(
    uow: UnitOfWork, payload: schemas.PruneJobHistory, *, now: datetime | None = None
) -> HistoryPruned:
    """Forget successful jobs older than the retention; failures stay until retried or read.

    Successes older than the retention can no longer be delivered again (Redis forgets a
    job long before), so their idempotency records have done their work. ``more_left``:
    the run stopped at its bound with more to delete, which the next run goes on with.
    """
    cutoff = (now or utcnow()) - timedelta(days=payload.keep_days)
    deleted = batch = 0
    for _ in range(PRUNE_BATCHES):
        batch = await uow.jobs.delete_succeeded_before(cutoff, limit=PRUNE_BATCH)
        deleted += batch
        if batch < PRUNE_BATCH:
            break
    result = HistoryPruned(deleted=deleted, cutoff=cutoff, more_left=batch == PRUNE_BATCH)
    await uow.commit(result)
    return result
