"""Whole job ids from what an operator typed: the id itself, or any prefix of it that only
one job (or submission) has, as git takes a commit's. Every face that accepts a job id (the
CLI's commands, the API's routes, the console's forms) resolves it here first.

An id known as typed wins at once (Redis or the history: a few key reads); a prefix is
looked up in Redis (a SCAN of the job, result and submission keys) and in the history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.ops.actions import Refused
from worker.ops.following import with_generation
from worker.ops.job_notes import SUBMISSION_PREFIX
from worker.ops.job_state import Outcome, Sources, UnknownJob, known_outcome

if TYPE_CHECKING:
    from arq.connections import ArqRedis

SHOWN = 5  # the candidates an ambiguous prefix names
LOOKED_AT = 100  # matches counted at most: "100 or more"


async def whole_job_id(sources: Sources, given: str) -> str:
    """``given`` when a job has that id; else the one job id that starts with it. Raises
    ``UnknownJob`` when none does, ``Refused`` naming how many (and a few) when several do."""
    if not given or await _known(sources, given):
        return given
    matches = await _matching(sources, given)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownJob(given)
    count = f"{LOOKED_AT} or more" if len(matches) >= LOOKED_AT else str(len(matches))
    shown = ", ".join(matches[:SHOWN]) + (", …" if len(matches) > SHOWN else "")
    raise Refused(
        f"job id prefix {given!r} is ambiguous: {count} jobs start with it ({shown}); "
        "type more of the id",
        job_id=given,
    )


async def outcome_of(sources: Sources, given: str, *, describe: bool = False) -> Outcome:
    """Where the job ``given`` (its id, or a unique prefix of it) stands, a generation's
    progress included: ``dbjobs status`` and the API's job."""
    outcome = await known_outcome(sources, await whole_job_id(sources, given), describe=describe)
    return await with_generation(sources, outcome)


def _key_prefixes() -> tuple[str, ...]:
    from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix

    return (job_key_prefix, result_key_prefix, in_progress_key_prefix, SUBMISSION_PREFIX)


async def _known(sources: Sources, job_id: str) -> bool:
    redis = await sources.queue()
    if await redis.exists(*(prefix + job_id for prefix in _key_prefixes())):
        return True
    from domain.history_queries import is_known  # its views: not for a job Redis holds

    return await is_known(sources.read_rows, job_id)


async def _matching(sources: Sources, prefix: str) -> list[str]:
    from domain.history_queries import ids_starting_with

    found = set(await _in_redis(await sources.queue(), prefix))
    found.update(await ids_starting_with(sources.read_rows, prefix, LOOKED_AT))
    return sorted(found)


async def _in_redis(redis: ArqRedis, prefix: str) -> set[str]:
    found: set[str] = set()
    for key_prefix in _key_prefixes():  # none has a glob character of its own
        pattern = key_prefix + _glob_literal(prefix) + "*"
        async for key in redis.scan_iter(match=pattern, count=1_000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            found.add(name[len(key_prefix) :])
            if len(found) >= LOOKED_AT:
                return found
    return found


def _glob_literal(text: str) -> str:
    """``text`` matched literally by Redis's glob patterns."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
