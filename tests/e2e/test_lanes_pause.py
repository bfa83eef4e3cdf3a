"""A kind of job and a lane paused and resumed across two real workers (``worker.ops.controls``):
the paused jobs stay queued while the workers run everything else, then all run."""

from __future__ import annotations

import pytest

from tests.support.fleet import results, wait_for
from worker.ops.controls import pause, resume, target_of
from worker.ops.enqueue import enqueue_many
from worker.registry import CREATE_PROFILE, FINISH_RUN
from worker.settings import Settings

pytestmark = pytest.mark.e2e

QUEUE = Settings().queue_name


def profile(n: int) -> dict[str, str]:
    return {"username": f"user{n}", "email": f"user{n}@example.com", "full_name": "U"}


async def test_paused_work_waits_on_every_worker_until_resumed(workers, pool):
    workers.start_many(2)
    await pause(pool, QUEUE, target_of(CREATE_PROFILE.command))
    await pause(pool, QUEUE, target_of("bulk"))
    held = await enqueue_many(pool, CREATE_PROFILE.name, [profile(n) for n in range(3)])
    sent_down = await enqueue_many(pool, CREATE_PROFILE.name, [profile(3)], lane="bulk")
    # Another kind in a running lane: proof that both workers poll meanwhile.
    others = await enqueue_many(
        pool, FINISH_RUN.name, [{"run_id": n, "status": "completed"} for n in range(1, 9)]
    )

    async def others_ran() -> bool:
        return len(await results(pool, others)) == len(others)

    await wait_for(others_ran, within=60, what="the jobs of a running kind")
    assert await results(pool, held + sent_down) == {}
    await resume(pool, QUEUE, target_of(CREATE_PROFILE.command))

    async def held_ran() -> bool:
        return len(await results(pool, held)) == len(held)

    await wait_for(held_ran, within=60, what="the resumed kind's jobs")
    assert await results(pool, sent_down) == {}  # its lane is still paused
    await resume(pool, QUEUE, target_of("bulk"))

    async def all_ran() -> bool:
        return len(await results(pool, sent_down)) == 1

    await wait_for(all_ran, within=60, what="the resumed lane's job")
