"""A submission that became several jobs (a file's batches, a generation's chunks), under
one id: the marker that says how many jobs it made, all its jobs' results read at once,
and its outcome as one job's. Where a submission stands once Redis has forgotten it is
read from the history, as any job (``worker.ops.job_state``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from worker.ops.job_notes import SUBMISSION_PREFIX
from worker.ops.job_state import (
    JobFailure,
    Outcome,
    Sources,
    failure,
    from_result,
    known_outcome,
)

if TYPE_CHECKING:
    from arq.connections import ArqRedis

SUBMISSIONS_SHOWN = 10  # submissions in progress read with the queue's head, most queued first


async def mark_submission(
    sources: Sources, parent_id: str, function: str, job_ids: Sequence[str]
) -> None:
    """Remember, for as long as arq keeps the jobs, that ``parent_id`` became ``job_ids``."""
    import orjson

    queue = await sources.queue()
    marker = orjson.dumps({"function": function, "jobs": len(job_ids)})
    await queue.set(SUBMISSION_PREFIX + parent_id, marker, px=queue.expires_extra_ms)


# KEYS: every lane's queue, then each job's result key; ARGV: the number of lanes, then the
# job ids. Per job: its result, 1 while it is queued (or deferred, or running), 0 when
# Redis knows nothing of it, -1 when its result key holds something else than a string.
_RESULTS_SCRIPT = """
local replies, n = {}, tonumber(ARGV[1])
local function queued(id)
  for lane = 1, n do
    if redis.call('zscore', KEYS[lane], id) then return true end
  end
  return false
end
for i = 1, #ARGV - 1 do
  local result = redis.pcall('get', KEYS[n + i])
  if type(result) == 'table' then
    replies[i] = -1
  elseif result then
    replies[i] = result
  elseif queued(ARGV[i + 1]) then
    replies[i] = 1
  else
    replies[i] = 0
  end
end
return replies
"""


async def read_results(sources: Sources, job_ids: list[str]) -> dict[str, Outcome]:
    """The jobs among ``job_ids`` that have ended: all their results in one script call
    (a pipeline of a GET and a ZSCORE per job cost the CLI 1 s of CPU per 40 polls of a
    thousand jobs; the script, a tenth of that)."""
    from arq.constants import result_key_prefix

    from worker.arq_jobs import UnreadableData, decoded_result
    from worker.lanes import lane_queues

    queue = await sources.queue()
    script = queue.register_script(_RESULTS_SCRIPT)
    lanes = lane_queues(queue.default_queue_name)
    keys = [*lanes, *(result_key_prefix + job_id for job_id in job_ids)]
    replies = await script(keys=keys, args=[len(lanes), *job_ids])
    found: dict[str, Outcome] = {}
    for job_id, reply in zip(job_ids, replies, strict=True):
        if isinstance(reply, bytes):
            found[job_id] = from_result(job_id, decoded_result(job_id, reply))
        elif reply == -1:
            raise UnreadableData(job_id, ValueError("not a string"), result=True)
        elif not reply:  # neither queued nor finished in Redis: ask the history
            outcome = await known_outcome(sources, job_id)
            if outcome.done:
                found[job_id] = outcome
    return found


def combined(job_id: str, function: str, outcomes: Sequence[Outcome]) -> Outcome:
    """Several jobs of one submission read as one: their counts added up as the history
    adds them up, failures listed."""
    from domain.views import add_up

    failures = [o for o in outcomes if o.state == "failed"]
    results = [o.result if isinstance(o.result, dict) else None for o in outcomes]
    run_ids = {result.get("run_id") for result in results if result} - {None}
    result = {**({"run_id": run_ids.pop()} if len(run_ids) == 1 else {}), **add_up(results)}
    states = {"succeeded": len(outcomes) - len(failures), "failed": len(failures)}
    children = {"recorded": len(outcomes), "states": states, "failures": []}
    outcome = Outcome(
        job_id=job_id, state="succeeded", function=function, result=result, children=children
    )
    if not failures:
        return outcome
    first = failures[0].error or JobFailure(type=None, message=None)
    message = f"{len(failures)} of {len(outcomes)} jobs failed; first, {failures[0].job_id}: "
    error = failure(first.type, message + str(first.message))
    return outcome.model_copy(update={"state": "failed", "error": error})


@dataclass(frozen=True)
class SubmissionProgress:
    """A submission (a generation's chunks, a file's batches) with jobs in the queue's head:
    how far it got as a whole, against the count its marker gives."""

    parent_id: str
    function: str | None
    jobs: int  # jobs it became
    queued: int  # of those, in the queue's head (waiting or running)
    running: int

    @property
    def done(self) -> int:
        return max(0, self.jobs - self.queued)


async def read_progress(
    redis: ArqRedis, job_ids: list[str], running: set[str]
) -> tuple[SubmissionProgress, ...]:
    """The submissions the head's jobs belong to (``<parent>:<n>``, a marker for the
    parent), read with one MGET of their markers."""
    queued: Counter[str] = Counter()
    started: Counter[str] = Counter()
    for job_id in job_ids:
        parent, _, number = job_id.rpartition(":")
        if parent and number.isdigit():
            queued[parent] += 1
            started[parent] += job_id in running
    parents = [parent for parent, _ in queued.most_common(SUBMISSIONS_SHOWN)]
    if not parents:
        return ()
    markers = await redis.mget([SUBMISSION_PREFIX + parent for parent in parents])
    found = []
    for parent, raw in zip(parents, markers, strict=True):
        marker = _marker(raw)
        if marker is not None:
            function, jobs = marker
            found.append(
                SubmissionProgress(parent, function, jobs, queued[parent], started[parent])
            )
    return tuple(found)


def _marker(raw: bytes | None) -> tuple[str | None, int] | None:
    """A submission marker's function and job count; None for anything else."""
    import orjson

    try:
        fields = orjson.loads(raw) if raw else None
        if not isinstance(fields, dict):
            return None
        jobs = int(fields["jobs"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    function = fields.get("function")
    return ((function if isinstance(function, str) else None), jobs) if jobs >= 1 else None
