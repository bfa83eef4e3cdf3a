from __future__ import annotations

from domain import schemas
from domain.db import utcnow
from domain.errors import GenerationNotFound, InvalidRequest, ProfileNotFound, StaleVersion
from domain.generator import generate_chunk_yielding as fake_profiles
from domain.models import Profile, ProfileGeneration
from domain.uow import UnitOfWork
from domain.views import ChunkOutcome, GenerationPlan, GenerationStatus, ProfileView


async def create_profile(uow: UnitOfWork, payload: schemas.CreateProfile) -> ProfileView:
    now = utcnow()
    profile = await uow.profiles.add(
        Profile(**payload.model_dump(), created_at=now, updated_at=now, version=1)
    )
    result = ProfileView.model_validate(profile)
    await uow.commit(result)
    return result


async def get_profile(uow: UnitOfWork, profile_id: int) -> ProfileView:
    profile = await uow.profiles.get(profile_id)
    if profile is None:
        raise ProfileNotFound(profile_id)
    return ProfileView.model_validate(profile)


async def list_profiles(uow: UnitOfWork, query: schemas.ListProfiles) -> list[ProfileView]:
    profiles = await uow.profiles.list_newest(
        username_prefix=query.username, email_prefix=query.email, limit=query.limit
    )
    return [ProfileView.model_validate(profile) for profile in profiles]


async def update_profile(uow: UnitOfWork, payload: schemas.UpdateProfile) -> ProfileView:
    """Apply a partial update under a row lock; a stale ``expected_version`` is refused."""
    profile = await uow.profiles.get_for_update(payload.profile_id)
    if profile is None:
        raise ProfileNotFound(payload.profile_id)
    if payload.expected_version is not None and payload.expected_version != profile.version:
        raise StaleVersion(profile.id, payload.expected_version, profile.version)
    for field, value in payload.changes.as_dict().items():
        setattr(profile, field, value)
    profile.version += 1
    profile.updated_at = utcnow()
    await uow.profiles.flush()
    result = ProfileView.model_validate(profile)
    await uow.commit(result)
    return result


def _chunk_count(generation: ProfileGeneration) -> int:
    return schemas.chunk_count(generation.total, generation.chunk_size)


async def start_generation(uow: UnitOfWork, payload: schemas.GenerateProfiles) -> GenerationPlan:
    """Register a generation under its key (idempotent) and say how it splits into chunks."""
    generation = await uow.generations.get_or_create(
        key=payload.key, seed=payload.seed, total=payload.count, chunk_size=payload.chunk_size
    )
    if (generation.seed, generation.total, generation.chunk_size) != (
        payload.seed,
        payload.count,
        payload.chunk_size,
    ):
        raise InvalidRequest(f"generation key {payload.key!r} was used for another request")
    result = GenerationPlan(
        generation_id=generation.id,
        key=generation.key,
        total=generation.total,
        chunk_size=generation.chunk_size,
        chunks=_chunk_count(generation),
    )
    await uow.commit(result)
    return result


async def generate_chunk(uow: UnitOfWork, payload: schemas.GenerateChunk) -> ChunkOutcome:
    """Insert one chunk of a generation; a chunk already committed adds nothing."""
    generation = await uow.generations.get(payload.generation_id)
    if generation is None:
        raise GenerationNotFound(payload.generation_id)
    if payload.chunk_index >= _chunk_count(generation):
        raise InvalidRequest(
            f"chunk_index {payload.chunk_index} is out of range: the generation has "
            f"{_chunk_count(generation)} chunks"
        )
    start = payload.chunk_index * generation.chunk_size
    count = min(generation.chunk_size, generation.total - start)
    outcome = ChunkOutcome(
        generation_id=generation.id, chunk_index=payload.chunk_index, inserted=0, duplicate=True
    )
    if not await uow.generations.claim_chunk(generation.id, payload.chunk_index, count):
        await uow.commit(outcome)  # nothing to write but the job's own record
        return outcome
    rows = await fake_profiles(
        seed=generation.seed,
        generation_number=generation.id,
        chunk_index=payload.chunk_index,
        start=start,
        count=count,
    )
    inserted = await uow.profiles.insert_many(rows)
    result = outcome.model_copy(update={"inserted": inserted, "duplicate": False})
    await uow.commit(result)
    return result


async def generation_status(uow: UnitOfWork, generation_id: int) -> GenerationStatus:
    status = await uow.generations.status(generation_id)
    if status is None:
        raise GenerationNotFound(generation_id)
    return status
