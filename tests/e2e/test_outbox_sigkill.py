"""A worker SIGKILLed while it writes a failure from the history outbox loses nothing: the
entry leaves the outbox only once the history holds it."""

from __future__ import annotations

import signal

import orjson
import pytest

from tests.support.fleet import OFTEN_DRAINING_SETTINGS, rows, scalar, table_locked, wait_for
from worker.runtime.outbox import DRAIN_TURN_KEY, OUTBOX_KEY

pytestmark = pytest.mark.e2e

JOB_ID = "kept-through-a-kill"
WAITING_ON_THE_LOCK = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND query ILIKE '%job_records%'"
)


def _entry() -> bytes:
    stamp = {
        "job_id": JOB_ID, "function": "create_profile", "tries": 3, "worker": "w:gone",
        "started_at": "2026-12-06T10:00:00+00:00", "parent_id": None, "payload": None,
    }  # fmt: skip
    return orjson.dumps({"stamp": stamp, "error_type": "OperationalError",
                         "message": "the database was away", "payload": None,
                         "retryable": True})  # fmt: skip


async def test_a_worker_killed_while_writing_an_outbox_entry_loses_nothing(
    workers, pool, session_factory
):
    await pool.lpush(OUTBOX_KEY, _entry())
    async with table_locked(session_factory, "job_records"):
        victim = workers.start(OFTEN_DRAINING_SETTINGS)

        async def blocked() -> bool:
            return bool(await scalar(session_factory, WAITING_ON_THE_LOCK))

        # The worker drains every 0.5 s here (5 s in production): its write of the entry
        # waits on the lock, mid-drain.
        await wait_for(blocked, within=30, what="the drain's write waiting on the lock")
        victim.signal(signal.SIGKILL)
        victim.wait(timeout=10)

    assert await pool.lrange(OUTBOX_KEY, 0, -1) == [_entry()]
    await pool.delete(DRAIN_TURN_KEY)  # the dead worker's turn, lapsed (20 s) at once
    workers.start(OFTEN_DRAINING_SETTINGS)

    async def written() -> bool:
        return bool(await rows(session_factory, "SELECT 1 FROM job_records WHERE job_id = :j",
                               j=JOB_ID))  # fmt: skip

    await wait_for(written, within=30, what="the entry written by the next worker")
    # Its row only: a cron tick at a minute's turn may have run on the new worker meanwhile.
    recorded = "SELECT status, tries, error_type FROM job_records WHERE job_id = :j"
    assert await rows(session_factory, recorded, j=JOB_ID) == [("failed", 3, "OperationalError")]
    await wait_for(lambda: _empty(pool), within=10, what="the entry removed once written")


async def _empty(pool) -> bool:
    return int(await pool.llen(OUTBOX_KEY)) == 0
