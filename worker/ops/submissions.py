"""A submission that became several jobs (a file's batches, a generation's chunks), under
one id: the marker that says how many jobs it made, all its jobs' results read at once,
and its outcome as one job's. Where a submission stands once Redis has forgotten it is
read from the history, as any job (``worker.ops.job_state``).
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.ops.job_state import (
    SUBMISSION_PREFIX,
    JobFailure,
    Outcome,
    Sources,
    failure,
    from_result,
    known_outcome,
)


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

    from worker.lanes import lane_queues
    from worker.serialization import UnreadableData, decoded_result

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

    failures = [o for o in outcomes if o.status == "failed"]
    results = [o.result if isinstance(o.result, dict) else None for o in outcomes]
    run_ids = {result.get("run_id") for result in results if result} - {None}
    result = {**({"run_id": run_ids.pop()} if len(run_ids) == 1 else {}), **add_up(results)}
    states = {"succeeded": len(outcomes) - len(failures), "failed": len(failures)}
    children = {"recorded": len(outcomes), "states": states, "failures": []}
    outcome = Outcome(
        job_id=job_id, status="succeeded", function=function, result=result, children=children
    )
    if not failures:
        return outcome
    first = failures[0].error or JobFailure(type=None, message=None)
    message = f"{len(failures)} of {len(outcomes)} jobs failed; first, {failures[0].job_id}: "
    error = failure(first.type, message + str(first.message))
    return outcome.model_copy(update={"status": "failed", "error": error})
