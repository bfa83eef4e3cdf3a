"""A worker SIGKILLed mid-generation: the other one finishes it, nothing lost or doubled."""

from __future__ import annotations

import re
import signal
import time

import pytest
from arq.constants import retry_key_prefix

from tests.support.fleet import Summary, report, rows, scalar, table_locked, wait_for
from worker.lanes import limits_key
from worker.registry import GENERATE_CHUNK, chunk_job_id
from worker.settings import Settings

pytestmark = pytest.mark.e2e

TOTAL = 200_000
CHUNK_SIZE = 10_000
CHUNKS = TOTAL // CHUNK_SIZE
MAX_JOBS = 2  # chunks per worker: its one slot more is kept for interactive work (lanes)
RECOVERY_PROMISE_S = 15
# The killed worker's chunks come back when their leases lapse: a lease shorter than the
# default 8 s (the same mechanism at any length) keeps the test from waiting it out.
LEASE_S = "3"
CHUNK_EVENT = re.compile(r"([→←!↻]) generation:(\d+):chunk:(\d+):sigkill:generate_profiles_chunk")


def chunks_in_flight(log: str) -> set[int]:
    """Chunks the log shows started and not yet ended (succeeded, failed or retried)."""
    running: set[int] = set()
    for arrow, _, index in CHUNK_EVENT.findall(log):
        if arrow == "→":
            running.add(int(index))
        else:
            running.discard(int(index))
    return running


async def committed_chunks(session_factory) -> set[int]:
    found = await rows(session_factory, "SELECT chunk_index FROM profile_generation_chunks")
    return {index for (index,) in found}


async def test_sigkill_mid_generation_is_finished_by_another_worker(workers, pool, session_factory):
    # No cluster-wide cap on chunks here: each worker fills its own slots. Each chunk's start
    # and end line (arq's, off by default) tell which chunks were in flight.
    await pool.hset(limits_key(Settings().queue_name), GENERATE_CHUNK.name, 2 * MAX_JOBS)
    settings = {"JOBS_MAX_JOBS": str(MAX_JOBS + 1), "JOBS_LEASE_SECONDS": LEASE_S}
    doomed = workers.start(**settings, JOBS_LOG_EACH_JOB="true")
    workers.start(**settings, JOBS_LOG_EACH_JOB="true")
    # While the test holds this lock no chunk can insert its profiles, so none can commit:
    # whatever chunk the log shows started is surely in flight when the kill lands.
    async with table_locked(session_factory, "profiles"):
        await pool.enqueue_job(
            "generate_profiles", {"count": TOTAL, "chunk_size": CHUNK_SIZE, "key": "sigkill"}
        )

        async def doomed_is_full() -> bool:
            return len(chunks_in_flight(doomed.log)) == MAX_JOBS

        await wait_for(doomed_is_full, within=60, what="first worker busy with chunks")
        doomed.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        doomed.wait(timeout=10)
        assert await committed_chunks(session_factory) == set(), "the lock let a chunk commit"
        lost = sorted(chunks_in_flight(doomed.log))
    # Released: the killed worker's transactions roll back, the other worker's go on.
    assert len(lost) == MAX_JOBS
    generation = await scalar(session_factory, "SELECT id FROM profile_generations")

    picked_up, completed = await _watch_recovery(pool, session_factory, generation, lost, killed_at)
    print(f"recovery after SIGKILL: picked up in {picked_up:.2f}s, completed in {completed:.2f}s")
    assert completed < RECOVERY_PROMISE_S

    async def all_chunks_done() -> bool:
        return (
            await scalar(session_factory, "SELECT count(*) FROM profile_generation_chunks")
            == CHUNKS
        )

    await wait_for(all_chunks_done, within=120, what="all chunks committed")
    profiles, usernames, emails = (
        await rows(
            session_factory,
            "SELECT count(*), count(DISTINCT username), count(DISTINCT email) FROM profiles",
        )
    )[0]
    assert (profiles, usernames, emails) == (TOTAL, TOTAL, TOTAL)
    per_chunk = await rows(
        session_factory,
        "SELECT chunk_index, rows_inserted FROM profile_generation_chunks ORDER BY chunk_index",
    )
    assert per_chunk == [(index, CHUNK_SIZE) for index in range(CHUNKS)]
    await _assert_history(session_factory, generation, lost)
    report(
        Summary(
            scenario="1. SIGKILL during 200k-profile generation",
            jobs_run=1 + CHUNKS + len(lost),
            faults=f"SIGKILL of 1 of 2 workers ({len(lost)} chunk(s) in flight)",
            rows_lost=TOTAL - usernames,
            rows_doubled=profiles - usernames,
            recovery=f"picked up {picked_up:.1f}s, done {completed:.1f}s after the kill",
        )
    )


async def _watch_recovery(pool, session_factory, generation, lost, killed_at):
    """Seconds from the kill until every lost chunk started again, and until it committed.

    arq counts deliveries in the retry key (the killed run made it 1) and deletes the key
    once the job finished, so a chunk has been picked up again when it reads 2 or is done.
    """
    keys = {index: retry_key_prefix + chunk_job_id(generation, index, "sigkill") for index in lost}
    picked_up: dict[int, float] = {}

    async def lost_chunks_committed() -> bool:
        now = time.monotonic() - killed_at
        tries = dict(zip(keys, await pool.mget(list(keys.values())), strict=True))
        done = {
            r[0]
            for r in await rows(
                session_factory,
                "SELECT chunk_index FROM profile_generation_chunks WHERE chunk_index = ANY(:lost)",
                lost=lost,
            )
        }
        for index in lost:
            if index not in picked_up and (int(tries[index] or 0) >= 2 or index in done):
                picked_up[index] = now
        return len(done) == len(lost)

    await wait_for(lost_chunks_committed, within=60, what="lost chunks re-run", interval=0.05)
    return max(picked_up.values()), time.monotonic() - killed_at


async def _assert_history(session_factory, generation, lost):
    """The job history has one succeeded record per chunk; the lost ones took two tries."""
    history = await rows(
        session_factory,
        "SELECT job_id, status, tries, error_type, duration_ms FROM job_records "
        "WHERE function = 'generate_profiles_chunk' ORDER BY job_id",
    )
    assert len(history) == CHUNKS
    assert {status for _, status, _, _, _ in history} == {"succeeded"}
    assert all(error is None and duration >= 0 for _, _, _, error, duration in history)
    tries = {job_id: t for job_id, _, t, _, _ in history}
    assert all(tries[chunk_job_id(generation, index, "sigkill")] == 2 for index in lost)
    parent = await rows(
        session_factory,
        "SELECT status, tries FROM job_records WHERE function = 'generate_profiles'",
    )
    assert parent == [("succeeded", 1)]
