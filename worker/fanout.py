"""``generate_profiles``: split a generation into chunk jobs, each its own unit of work."""

from __future__ import annotations

from typing import Any

from domain import schemas, services
from domain.uow import DuplicateJob
from worker.deps import Deps, deps_of
from worker.runner import handle_failure, payload_from, stamp_of, validate

NAME = "generate_profiles"
CHUNK_JOB = "generate_profiles_chunk"


def chunk_job_id(generation_id: int, chunk_index: int, key: str) -> str:
    """Fixed per chunk; the key keeps it unique even when a reset database reuses ids
    while Redis still remembers the old generation's chunk jobs."""
    return f"generation:{generation_id}:chunk:{chunk_index}:{key}"


async def generate_profiles(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Register the generation, then enqueue one job per chunk.

    Idempotent by construction rather than by the job ledger: the generation is found by
    its key and chunk jobs have fixed ids, so a re-delivery (even one after a crash
    between the commit and the enqueue) re-enqueues whatever is missing and adds no row.
    """
    deps = deps_of(ctx)
    stamp = stamp_of(ctx, NAME)
    raw = payload_from(NAME, args, kwargs)
    try:
        payload = validate(NAME, schemas.GenerateProfiles, _with_defaults(raw, deps, stamp.job_id))
        async with deps.unit_of_work() as uow:
            plan = await services.start_generation(uow, payload)
        await _enqueue_chunks(deps, plan.generation_id, plan.chunks, payload.key)
        async with deps.unit_of_work(stamp) as uow:
            await uow.commit()
    except DuplicateJob:
        pass
    except Exception as error:
        return await handle_failure(deps, stamp, raw, error)
    return {**plan.model_dump(mode="json"), "key": payload.key}


def _with_defaults(raw: Any, deps: Deps, job_id: str) -> Any:
    if not isinstance(raw, dict):
        return raw
    # Without a key of its own, the job id names the generation: a re-delivery is the same one.
    defaults = {"key": job_id, "chunk_size": deps.settings.generation_chunk_size}
    return {**defaults, **raw}


async def _enqueue_chunks(deps: Deps, generation_id: int, chunks: int, key: str) -> None:
    for index in range(chunks):
        await deps.redis.enqueue_job(
            CHUNK_JOB,
            {"generation_id": generation_id, "chunk_index": index},
            _job_id=chunk_job_id(generation_id, index, key),
        )
