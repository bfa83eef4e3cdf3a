"""Domain errors. Each is permanent: running the same job again cannot make it succeed."""

from __future__ import annotations

from datetime import datetime


class DomainError(Exception):
    """Base of every error a use case raises on purpose."""


class NotFound(DomainError):
    entity = "object"
    message = "{entity} {id} not found"

    def __init__(self, entity_id: int | str) -> None:
        self.entity_id = entity_id
        super().__init__(self.message.format(entity=self.entity, id=entity_id))


class ProfileNotFound(NotFound):
    entity = "profile"


class ExperimentNotFound(NotFound):
    entity = "experiment"


class RunNotFound(NotFound):
    entity = "run"


class GenerationNotFound(NotFound):
    entity = "profile generation"


class JobNotFound(NotFound):
    entity = "job"
    message = "{entity} {id} is not in the job history"


class Conflict(DomainError):
    """The request contradicts what is stored (a unique value taken, a stale version...)."""


class AlreadyExists(Conflict):
    pass


class StaleVersion(Conflict):
    def __init__(self, profile_id: int, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"profile {profile_id} is at version {actual}, not the expected version {expected}"
        )


class InvalidTransition(Conflict):
    """A status change that the lifecycle does not allow (e.g. finishing a finished run)."""


class RunEnded(Conflict):
    """Points for a run that ended longer ago than the grace for late points."""

    def __init__(self, run_id: int, status: str, ended_at: datetime | None, late_seconds: int):
        self.run_id = run_id
        self.status = status
        when = f" at {ended_at.isoformat(timespec='seconds')}" if ended_at else ""
        super().__init__(
            f"run {run_id} is {status} (ended{when}): its points are accepted for "
            f"{late_seconds:,} s after it ends (late_seconds); nothing recorded"
        )


class InvalidRequest(DomainError):
    """Input that passed the schema but breaks a rule the schema cannot express."""
