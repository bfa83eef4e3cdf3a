"""Queue controls, whichever face asks: pause or resume a lane or a job kind cluster-wide,
and cap how many jobs of a kind run at once.

Both live in Redis beside the queue (``worker.lanes``) and every claim reads them
(``worker.runtime.claim_script``), so a change holds on every worker from its next poll.
A paused kind or lane keeps its queued jobs; jobs already running finish. A cap set here
overrides the registry's (``Job.limit``) until it is cleared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from arq.connections import ArqRedis

from worker.lanes import LANES, limits_key, paused_key
from worker.ops.actions import Refused
from worker.registry import JOBS, default_limits

MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Target:
    """A lane or a kind of job, as the paused set names it."""

    kind: Literal["lane", "job"]
    name: str

    @property
    def member(self) -> str:
        return f"{self.kind}:{self.name}"

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def target_of(given: str) -> Target:
    """A lane's name, or a job's name or command (``generate-profiles``); ``Refused`` naming
    the choices otherwise."""
    if given in LANES:
        return Target("lane", given)
    name = given.replace("-", "_")
    if name in JOBS:
        return Target("job", name)
    choices = ", ".join([*LANES, *(job.command for job in JOBS.values())])
    raise Refused(f"{given!r} is neither a lane nor a job: one of {choices}", kind="not_found")


async def pause(redis: ArqRedis, queue_name: str, target: Target) -> bool:
    """Pause ``target`` on every worker; False when it was paused already."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sadd(paused_key(queue_name), target.member)
        (added,) = await pipe.execute()
    return bool(added)


async def resume(redis: ArqRedis, queue_name: str, target: Target) -> bool:
    """Resume ``target``; False when it was not paused."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.srem(paused_key(queue_name), target.member)
        (removed,) = await pipe.execute()
    return bool(removed)


def job_named(given: str) -> str:
    """The registry's name of a job given by name or command; ``Refused`` otherwise."""
    target = target_of(given)
    if target.kind != "job":
        raise Refused(f"{given!r} is a lane: a cap is set on a job", kind="not_found")
    return target.name


async def set_limit(redis: ArqRedis, queue_name: str, job: str, cap: int | None) -> None:
    """At most ``cap`` jobs of ``job`` running at once, cluster-wide; None: the registry's."""
    if cap is not None and not 0 <= cap <= MAX_LIMIT:
        raise Refused(f"limit: {cap} is not between 0 and {MAX_LIMIT}")
    async with redis.pipeline(transaction=False) as pipe:
        if cap is None:
            pipe.hdel(limits_key(queue_name), job)
        else:
            pipe.hset(limits_key(queue_name), job, str(cap))
        await pipe.execute()


@dataclass(frozen=True)
class Controls:
    """The paused lanes and kinds, and the caps in force (by job name)."""

    paused: frozenset[str]
    limits: dict[str, int]
    overridden: frozenset[str]  # the jobs whose cap was set at run time

    def is_paused(self, target: Target) -> bool:
        return target.member in self.paused

    @property
    def paused_jobs(self) -> list[str]:
        return sorted(member[4:] for member in self.paused if member.startswith("job:"))


async def read_controls(redis: ArqRedis, queue_name: str) -> Controls:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.smembers(paused_key(queue_name))
        pipe.hgetall(limits_key(queue_name))
        paused, overrides = await pipe.execute()
    set_at_run_time = {
        key.decode(errors="replace"): int(value)
        for key, value in overrides.items()
        if value.isdigit()
    }
    return Controls(
        paused=frozenset(member.decode(errors="replace") for member in paused),
        limits={**default_limits(), **set_at_run_time},
        overridden=frozenset(set_at_run_time),
    )


__all__ = [
    "Controls",
    "Target",
    "job_named",
    "pause",
    "read_controls",
    "resume",
    "set_limit",
    "target_of",
]
