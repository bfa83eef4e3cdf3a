"""Use cases run on a schedule to keep the data healthy."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain import schemas
from domain.db import utcnow
from domain.services.tracker import settle_experiments
from domain.uow import UnitOfWork
from domain.views import HistoryPruned, StaleRunsFailed


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
    job long before), so their idempotency records have done their work.
    """
    cutoff = (now or utcnow()) - timedelta(days=payload.keep_days)
    deleted = await uow.jobs.delete_succeeded_before(cutoff)
    result = HistoryPruned(deleted=deleted, cutoff=cutoff)
    await uow.commit(result)
    return result
