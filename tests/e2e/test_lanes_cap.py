"""A cap on a kind of job holds across three real workers, and a SIGKILLed worker's slot
comes back with its lease (``worker.runtime.claim_script``)."""

from __future__ import annotations

import asyncio
import re
import signal

import pytest

from tests.support.fleet import table_locked, wait_for
from worker.lanes import lane_queue, limits_key
from worker.registry import GENERATE_CHUNK
from worker.settings import Settings

pytestmark = pytest.mark.e2e

CAP = 2
LEASE_S = 3
CHUNKS = 8
CHUNK_EVENT = re.compile(r"([→←!↻]) generation:\d+:chunk:(\d+):capped:generate_profiles_chunk")


def in_flight(log: str) -> set[int]:
    """Chunks the log shows started and not yet ended."""
    running: set[int] = set()
    for arrow, index in CHUNK_EVENT.findall(log):
        (running.add if arrow == "→" else running.discard)(int(index))
    return running


async def test_a_cap_holds_across_workers_and_a_killed_workers_slot_returns(
    workers, pool, session_factory
):
    await pool.hset(limits_key(Settings().queue_name), GENERATE_CHUNK.name, CAP)
    fleet = [
        workers.start(JOBS_MAX_JOBS="4", JOBS_LEASE_SECONDS=str(LEASE_S), JOBS_LOG_EACH_JOB="true")
        for _ in range(3)
    ]
    # No chunk can commit while the test holds the lock: every chunk started stays running.
    async with table_locked(session_factory, "profiles"):
        await pool.enqueue_job(
            "generate_profiles", {"count": CHUNKS * 1000, "chunk_size": 1000, "key": "capped"}
        )

        def running_on(processes) -> int:
            return sum(len(in_flight(process.log)) for process in processes)

        async def cap_reached() -> bool:
            return running_on(fleet) == CAP

        await wait_for(cap_reached, within=60, what=f"{CAP} chunks running")
        await asyncio.sleep(1)  # a hundred polls of each worker, with six chunks ready
        assert running_on(fleet) == CAP
        doomed = next(process for process in fleet if in_flight(process.log))
        lost = len(in_flight(doomed.log))
        doomed.signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        alive = [process for process in fleet if process is not doomed]

        async def slot_returned() -> bool:
            return running_on(alive) == CAP

        await wait_for(slot_returned, within=LEASE_S + 10, what="the killed worker's slot back")
        assert running_on(alive) == CAP
    assert 1 <= lost <= CAP

    async def all_done() -> bool:
        return all(not in_flight(process.log) for process in alive) and await _chunks_done(pool)

    await wait_for(all_done, within=120, what="every chunk committed")


async def _chunks_done(pool) -> bool:
    return await pool.zcard(lane_queue(Settings().queue_name, GENERATE_CHUNK.lane)) == 0
