"""The claim of one poll, in one script call: lanes, pauses, caps and the doorbell.

The script reads the ready head of each lane (``worker.lanes``), most urgent first, and
claims the jobs arq would (no in-progress key, due) by writing their lease. On every
``SHARE_EVERY``-th claim of the cluster the lower lanes go first, and a worker of more than
one slot never fills its last one from a lower lane: bulk work keeps a share however busy
the interactive lane is, and an interactive job never waits for a bulk job to end.

A paused lane is not read; a job of a paused kind is left where it is. A kind with a cap
keeps the ids of its claimed jobs in a set; a member whose in-progress key is gone (the
job ended, was retried, or its worker died and the lease lapsed) is dropped as the set is
counted, so a dead worker's slots return with its leases. A job's kind is read off the
first bytes of its data (arq writes ``{"t":..,"f":"<function>",...``), only while some
kind is paused or capped. Pausing a kind skips its jobs among the first ``depth`` ready
entries of a lane: jobs of other kinds queued behind a long run of paused ones wait.

Keys are derived from the queue name in the script (one Redis server, not a cluster).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, retry_key_prefix
from redis.commands.core import AsyncScript

from worker.lanes import (
    DOORBELL_TOKENS,
    LANES,
    SHARE_EVERY,
    Lane,
    doorbell_key,
    lane_queues,
    limits_key,
    paused_key,
    running_key,
    turn_key,
)
from worker.runtime.first_read import RETRY_KEY_SECONDS, FirstRead

# KEYS: the lanes' queues (most urgent first), then the turn counter, the paused set, the
# limits hash, the doorbell and arq's abort requests. ARGV: now, lease ms, wanted, lower
# lanes' wanted, lease value, depth, share every, in-progress prefix, job prefix, running
# prefix, tokens, retry prefix, retry key seconds, aborts taken (1 or 0), number of lanes,
# the lanes' names, then (job, cap) pairs of the registry.
# Returns {next due ms or -1, ready jobs of the first lane held by a claim, then per job:
# id, score, lane index, and its first read (worker.runtime.first_read): data, try (0: not
# read), aborted}.
_CLAIM = """
local now, lease, wanted, lower = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local value, depth, every = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local ip, jp, rp, tokens = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local retry, retry_s, n = ARGV[12], ARGV[13], tonumber(ARGV[15])
local turn_key, bell, aborts = KEYS[n + 1], KEYS[n + 4], KEYS[n + 5]
local abort_type = redis.call('type', aborts)['ok']
local readable = abort_type == 'zset' or abort_type == 'none'
local take_aborts = ARGV[14] == '1'
local paused, kinds = {}, false
for _, member in ipairs(redis.call('smembers', KEYS[n + 2])) do
  paused[member] = true
  if string.sub(member, 1, 4) == 'job:' then kinds = true end
end
local limits = {}
for i = 16 + n, #ARGV, 2 do limits[ARGV[i]] = tonumber(ARGV[i + 1]); kinds = true end
local over = redis.call('hgetall', KEYS[n + 3])
for i = 1, #over, 2 do limits[over[i]] = tonumber(over[i + 1]); kinds = true end
local order = {}
local turn = tonumber(redis.call('get', turn_key) or '0')
if n > 1 and every > 0 and turn % every == every - 1 then
  for i = 2, n do order[#order + 1] = i end
  order[#order + 1] = 1
else
  for i = 1, n do order[i] = i end
end
local free = {}
local function room_for(kind)
  if free[kind] == nil then
    local count = 0
    for _, id in ipairs(redis.call('smembers', rp .. kind)) do
      if redis.call('exists', ip .. id) == 1 then count = count + 1
      else redis.call('srem', rp .. kind, id) end
    end
    free[kind] = limits[kind] - count
  end
  return free[kind]
end
-- arq's first read of a job (worker.runtime.first_read); nothing where a key is of the
-- wrong type, for arq's own read to meet.
local function first_read(id)
  local data = redis.pcall('get', jp .. id)
  if not readable or type(data) == 'table' then return {false, 0, 0} end
  local try = redis.pcall('incr', retry .. id)
  if type(try) ~= 'number' then return {false, 0, 0} end
  redis.call('expire', retry .. id, retry_s)
  local aborted = 0
  if take_aborts then aborted = redis.call('zrem', aborts, id) end
  return {data, try, aborted}
end
local claimed, taken, lower_taken, more = {-1, 0}, 0, 0, false
local function full(lane)
  return taken >= wanted or (lane > 1 and lower_taken >= lower)
end
for _, lane in ipairs(order) do
  if not paused['lane:' .. ARGV[15 + lane]] and not full(lane) then
    local ids = redis.call('zrangebyscore', KEYS[lane], '-inf', now,
      'WITHSCORES', 'LIMIT', 0, depth)
    for i = 1, #ids, 2 do
      local id = ids[i]
      if redis.call('exists', ip .. id) == 0 then
        if full(lane) then more = true; break end
        local kind = nil
        if kinds then
          -- pcall: a job key of the wrong type is claimed as it is, for arq's read of it
          -- to meet and quarantine (worker.runtime.claiming), not fail every claim.
          local head = redis.pcall('getrange', jp .. id, 0, 200)
          if type(head) == 'string' then kind = string.match(head, '"f":"([^"]+)"') end
        end
        local ok = true
        if kind and paused['job:' .. kind] then
          ok = false
        elseif kind and limits[kind] then
          if room_for(kind) <= 0 then ok = false
          else free[kind] = free[kind] - 1; redis.call('sadd', rp .. kind, id) end
        end
        if ok then
          redis.call('set', ip .. id, value, 'PX', lease)
          claimed[#claimed + 1] = id
          claimed[#claimed + 1] = ids[i + 1]
          claimed[#claimed + 1] = lane
          for _, answer in ipairs(first_read(id)) do claimed[#claimed + 1] = answer end
          taken = taken + 1
          if lane > 1 then lower_taken = lower_taken + 1 end
        end
      elseif lane == 1 then
        claimed[2] = claimed[2] + 1
      end
    end
  end
end
if taken > 0 then redis.call('incr', turn_key) end
if more then
  redis.call('lpush', bell, 1)
  redis.call('ltrim', bell, 0, tokens - 1)
end
if taken == 0 then
  for lane = 1, n do
    if not paused['lane:' .. ARGV[15 + lane]] then
      local first = redis.call('zrangebyscore', KEYS[lane], '(' .. now, '+inf',
        'WITHSCORES', 'LIMIT', 0, 1)
      if first[2] and (claimed[1] == -1 or tonumber(first[2]) < claimed[1]) then
        claimed[1] = tonumber(first[2])
      end
    end
  end
end
return claimed
"""


@dataclass(frozen=True)
class Claimed:
    """One job claimed: its id as Redis holds it, its score, the lane it waits in, and
    the answers to arq's first read of it (None: arq reads it itself)."""

    job_id: bytes
    score: int
    lane: Lane
    first_read: FirstRead | None = None


@dataclass(frozen=True)
class Claim:
    jobs: list[Claimed]
    next_due_ms: int | None  # nothing claimed: when the first deferred job is due
    # Ready jobs of the first lane that something holds: running elsewhere, or a claim
    # whose worker died before the job started (``worker.runtime.leases`` caps those).
    held: int = 0


class Claimer:
    """Runs the claim script for one worker."""

    def __init__(self, redis: ArqRedis, queue_name: str, depth: int, *, aborts: bool) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.depth = depth
        self.aborts = aborts  # the worker takes abort requests (arq's allow_abort_jobs)
        self._script: AsyncScript = redis.register_script(_CLAIM)
        self._keys = [
            *lane_queues(queue_name),
            turn_key(queue_name),
            paused_key(queue_name),
            limits_key(queue_name),
            doorbell_key(queue_name),
            abort_jobs_ss,
        ]

    async def claim(
        self,
        *,
        now_ms: int,
        lease_ms: int,
        wanted: int,
        lower_wanted: int,
        lease_value: str,
        limits: Mapping[str, int],
    ) -> Claim:
        args: list[str | int] = [
            now_ms,
            lease_ms,
            wanted,
            lower_wanted,
            lease_value,
            self.depth,
            SHARE_EVERY,
            in_progress_key_prefix,
            job_key_prefix,
            running_key(self.queue_name, ""),
            DOORBELL_TOKENS,
            retry_key_prefix,
            RETRY_KEY_SECONDS,
            int(self.aborts),
            len(LANES),
            *LANES,
        ]
        for name, cap in limits.items():
            args += (name, cap)
        reply = await self._script(keys=self._keys, args=args)
        next_due, held = int(reply[0]), int(reply[1])
        rest = reply[2:]
        jobs = [_claimed(*rest[i : i + _FIELDS]) for i in range(0, len(rest), _FIELDS)]
        return Claim(jobs, None if next_due < 0 else next_due, held)


_FIELDS = 6  # a claimed job's fields in the script's reply


def _claimed(
    job_id: bytes, score: bytes, lane: int, data: bytes | None, tries: int, aborted: int
) -> Claimed:
    first_read = None
    if tries:
        first_read = FirstRead(job_id.decode(errors="replace"), data, tries, aborted == 1)
    return Claimed(job_id, int(float(score)), LANES[lane - 1], first_read)


__all__ = ["Claim", "Claimed", "Claimer"]
