"""Where a job is, as Redis and the job history have it: the evidence a test that counts
jobs shows for each one it cannot account for."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from arq.connections import ArqRedis
from arq.constants import (
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import deserialize_result
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.fleet import rows
from worker.lanes import lane_queues
from worker.serialization import deserialize
from worker.settings import Settings

MAX_LOG_LINES = 12  # per job


async def redis_state(pool: ArqRedis, job_id: str) -> dict[str, Any]:
    """A job's keys: its lane and score, its data's enqueue time, its claim or lease (value
    and time to live), arq's try count, its result."""
    queues = lane_queues(Settings().queue_name)
    async with pool.pipeline(transaction=True) as pipe:  # one moment for all of them
        for queue in queues:
            pipe.zscore(queue, job_id)
        pipe.get(job_key_prefix + job_id)
        pipe.get(in_progress_key_prefix + job_id)
        pipe.pttl(in_progress_key_prefix + job_id)
        pipe.get(retry_key_prefix + job_id)
        pipe.get(result_key_prefix + job_id)
        replies = await pipe.execute()
    scores, (job, claim, claim_ttl, tries, result) = replies[: len(queues)], replies[len(queues) :]
    queued = {q: score for q, score in zip(queues, scores, strict=True) if score is not None}
    state: dict[str, Any] = {"queued": queued or None}
    if job is not None:
        state["job"] = {key: deserialize(job).get(key) for key in ("t", "et")}
    if claim is not None:
        state["claim"] = f"{claim.decode(errors='replace')} ({claim_ttl} ms left)"
    if tries is not None:
        state["arq_tries"] = int(tries)
    if result is not None:
        done = deserialize_result(result, deserializer=deserialize)
        state["result"] = {"success": done.success, "try": done.job_try, "r": repr(done.result)}
    return state


async def history_state(
    factory: async_sessionmaker[AsyncSession], job_id: str
) -> list[dict[str, Any]]:
    """A job's rows in the job history: its record, and the tries that ended in a retry."""
    records = await rows(
        factory,
        "SELECT status, tries, duplicates, worker, error_type, error_message, enqueued_at, "
        "finished_at FROM job_records WHERE job_id = :id",
        id=job_id,
    )
    tries = await rows(
        factory,
        "SELECT try_number, worker, error_type, error_message, retry_at FROM job_tries "
        "WHERE job_id = :id ORDER BY try_number",
        id=job_id,
    )
    found = [{"record": dict(row._mapping)} for row in records]
    found += [{"try": dict(row._mapping)} for row in tries]
    return found


async def account_for(
    pool: ArqRedis,
    factory: async_sessionmaker[AsyncSession],
    job_ids: list[str],
    logs: Sequence[str] = (),
) -> str:
    """One line per job: what Redis and the history hold of it, then the log lines that
    name it (each worker's log, in order)."""
    lines = []
    for job_id in job_ids:
        held = await redis_state(pool, job_id)
        recorded = await history_state(factory, job_id)
        lines.append(f"{job_id}: redis {held}; history {recorded or 'none'}")
        named_here = re.compile(re.escape(job_id) + r"(?!\w)").search
        named = [line for log in logs for line in log.splitlines() if named_here(line)]
        lines += (f"    {line[:300]}" for line in named[:MAX_LOG_LINES])
    return "\n".join(lines)
