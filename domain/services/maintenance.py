"""Use cases run on a schedule to keep the data healthy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain import schemas
from domain.db import utcnow
from domain.repositories.history_partitions import DAYS_AHEAD
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
    """Forget jobs enqueued before the retention, whole days at a time, and make the days
    ahead; failures nobody has handled, and jobs still retrying, stay.

    Jobs older than the retention can no longer be delivered again (Redis forgets a job
    long before), so their idempotency records have done their work.
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=payload.keep_days)
    today = now.astimezone(UTC).date()
    made = await uow.jobs.make_days(today, today + timedelta(days=DAYS_AHEAD))
    forgotten = await uow.jobs.forget_before(cutoff)
    result = HistoryPruned(
        deleted=forgotten.rows,
        cutoff=cutoff,
        days_dropped=forgotten.days,
        days_made=made,
        kept=forgotten.kept,
    )
    await uow.commit(result)
    return result
