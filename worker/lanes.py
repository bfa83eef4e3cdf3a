"""Lanes: interactive work never waits behind bulk work.

Every job declares a lane in the registry (``worker.registry``) and a producer may send one
job down another. Each lane is an arq queue of its own, a sorted set scored as arq scores
it (enqueue or defer time), so arq's sorted set stays the source of truth and a retry or a
deferred job keeps its lane: arq re-scores a job within the set that holds it. The most
urgent lane keeps arq's queue name, so a plain arq client's jobs (and old entries) are
interactive; the others append their name to it. Every key name is derived here.

A worker claims from the lanes in ``LANES`` order, the most urgent with ready work first
(``worker.runtime.claim_script``), except on every ``SHARE_EVERY``-th claim across the
cluster, which serves the lower lanes first: bulk keeps at least that share of the claims
however busy the interactive lane is, and loses nothing while it is quiet.
"""

from __future__ import annotations

from typing import Literal, get_args

Lane = Literal["interactive", "maintenance", "bulk"]
LANES: tuple[Lane, ...] = get_args(Lane)  # most urgent first
DEFAULT_LANE: Lane = "interactive"
SHARE_EVERY = 10  # 1 claim in 10 serves the lower lanes first
DOORBELL_TOKENS = 4  # at most this many idle workers woken per ring


def lane_queue(queue_name: str, lane: Lane) -> str:
    """The sorted set of ``lane``: arq's queue name for the most urgent lane."""
    return queue_name if lane == LANES[0] else f"{queue_name}:lane:{lane}"


def lane_queues(queue_name: str) -> list[str]:
    """The sorted sets of every lane, most urgent first."""
    return [lane_queue(queue_name, lane) for lane in LANES]


def doorbell_key(queue_name: str) -> str:
    """The list an idle worker blocks on; producers push a token to it."""
    return f"{queue_name}:doorbell"


def turn_key(queue_name: str) -> str:
    """The cluster's count of claims, which decides the lower lanes' turns."""
    return f"{queue_name}:claims"


def paused_key(queue_name: str) -> str:
    """The set of paused lanes (``lane:<name>``) and job kinds (``job:<name>``)."""
    return f"{queue_name}:paused"


def limits_key(queue_name: str) -> str:
    """Run-time caps on running jobs of a kind: job name -> cap (overrides the registry)."""
    return f"{queue_name}:limits"


def running_key(queue_name: str, job_name: str) -> str:
    """The ids of a capped kind's jobs claimed and not yet ended (their leases tell)."""
    return f"{queue_name}:running:{job_name}"


def lane_problem(given: str) -> str | None:
    """What is wrong with a lane a producer named; None when it is one."""
    if given in LANES:
        return None
    return f"unknown lane {given!r}: one of {', '.join(LANES)}"


def as_lane(given: str) -> Lane:
    """``given`` as a lane; ``ValueError`` naming the lanes when it is none."""
    if (problem := lane_problem(given)) is not None:
        raise ValueError(problem)
    return LANES[LANES.index(given)]


__all__ = [
    "DEFAULT_LANE",
    "DOORBELL_TOKENS",
    "LANES",
    "SHARE_EVERY",
    "Lane",
    "as_lane",
    "doorbell_key",
    "lane_problem",
    "lane_queue",
    "lane_queues",
    "limits_key",
    "paused_key",
    "running_key",
    "turn_key",
]
