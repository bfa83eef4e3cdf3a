"""The profile store's payloads: create, change, list and generate profiles."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import (
    AfterValidator,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from domain.limits import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, chunk_count
from domain.schemas.base import INT32_MAX, Bio, Id, Payload

MAX_GENERATE = 10_000_000
# A generation's chunk jobs (of MIN_CHUNK_SIZE to MAX_CHUNK_SIZE profiles each) are at
# most MAX_CHUNKS. 30,000 chunks of one profile once took 95 s to plan and 17 MB of Redis.
MAX_CHUNKS = 1000

GENERATED_USERNAME = re.compile(r"\.g\d+n\d+$")
GENERATED_EMAIL = re.compile(r"\.g\d+n\d+@")


def _not_generated(username: str) -> str:
    if GENERATED_USERNAME.search(username):
        raise ValueError("the suffix .g<N>n<M> is reserved for generated profiles")
    return username


def _not_generated_email(email: str) -> str:
    # A taken generated email would make its generation's chunk fail on every re-run.
    if GENERATED_EMAIL.search(email):
        raise ValueError("the suffix .g<N>n<M> before '@' is reserved for generated profiles")
    return email


Username = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$"
    ),
    AfterValidator(_not_generated),
]
Email = Annotated[EmailStr, AfterValidator(_not_generated_email)]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CreateProfile(Payload):
    """Create a profile (the result has its id)."""

    username: Username = Field(description="3-64 characters: letters, digits, _ . -")
    email: Email = Field(description="A valid e-mail address.")
    full_name: FullName = Field(description="The person's name.")
    bio: Bio = Field("", description="A short text.")


READ_ONLY_PROFILE_FIELDS = frozenset({"id", "created_at", "updated_at", "version"})


class ProfileChanges(Payload):
    """A partial update: only the fields given are changed."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_read_only(cls, data: object) -> object:
        if isinstance(data, dict):
            read_only = sorted(READ_ONLY_PROFILE_FIELDS & data.keys())
            if read_only:
                raise ValueError(f"read-only field(s) cannot be set: {', '.join(read_only)}")
            if not data:
                raise ValueError("no field to change")
            nulls = sorted(field for field, value in data.items() if value is None)
            if nulls:
                raise ValueError(f"null given for {', '.join(nulls)}: omit a field to keep it")
        return data

    username: Username | None = None
    email: Email | None = None
    full_name: FullName | None = None
    bio: Bio | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class UpdateProfile(Payload):
    """Change fields of a profile."""

    profile_id: Id = Field(description="The profile to change.")
    changes: ProfileChanges
    expected_version: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = Field(
        None, description="Refuse the change unless the profile is at this version."
    )


class GenerateProfiles(Payload):
    """Generate fake profiles, in chunk jobs that are each idempotent."""

    count: Annotated[int, Field(ge=1, le=MAX_GENERATE)] = Field(
        description="How many profiles to generate."
    )
    seed: Annotated[int, Field(ge=0, le=INT32_MAX)] = Field(0, description="Seed of the fake data.")
    chunk_size: Annotated[int, Field(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)] = Field(
        5_000, description="Profiles per chunk job (default: the worker's setting)."
    )
    # The same key always means the same generation, so a re-delivered request adds nothing.
    key: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        default_factory=lambda: uuid.uuid4().hex
    )

    @field_validator("chunk_size")
    @classmethod
    def _few_enough_chunks(cls, chunk_size: int, info: ValidationInfo) -> int:
        """Checked on the chunk size, so that the refusal names it, with the value to use."""
        count = info.data.get("count")
        if count is not None and chunk_count(count, chunk_size) > MAX_CHUNKS:
            raise ValueError(
                f"at least {smallest_chunk_size(count):,} for {count:,} profiles "
                f"(a generation makes at most {MAX_CHUNKS:,} chunk jobs)"
            )
        return chunk_size


def smallest_chunk_size(count: int) -> int:
    """The smallest chunk size that splits ``count`` profiles into at most MAX_CHUNKS."""
    return max(MIN_CHUNK_SIZE, chunk_count(count, MAX_CHUNKS))


class GenerateChunk(Payload):
    """Insert one chunk of a generation (enqueued by generate_profiles)."""

    generation_id: Id
    chunk_index: Annotated[int, Field(ge=0, lt=MAX_CHUNKS)]


# A prefix to match: any text (LIKE's wildcards in it are matched literally) but NUL.
Prefix = Annotated[str, StringConstraints(min_length=1, max_length=254, pattern=r"^[^\x00]+$")]


class ListProfiles(Payload):
    """The newest profiles, those whose username and email start with the prefixes given."""

    username: Prefix | None = Field(None, description="Only usernames that start with this.")
    email: Prefix | None = Field(None, description="Only emails that start with this.")
    limit: Annotated[int, Field(ge=1, le=1000)] = 20
