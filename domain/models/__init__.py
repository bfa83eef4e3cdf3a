"""ORM models. Importing this package registers every table on ``Base.metadata``."""

from domain.models.bookkeeping import GenerationChunk, JobRecord, JobTry, ProfileGeneration
from domain.models.profile import Profile
from domain.models.tracker import Experiment, Metric, Run

__all__ = [
    "Experiment",
    "GenerationChunk",
    "JobRecord",
    "JobTry",
    "Metric",
    "Profile",
    "ProfileGeneration",
    "Run",
]
