-- The claim of one poll (worker/runtime/claim_script.py).
-- KEYS: the lanes' queues (most urgent first), then the turn counter, the paused set, the
-- limits hash, the doorbell and arq's abort requests. ARGV: now, lease ms, wanted, lower
-- lanes' wanted, lease value, depth, share every, in-progress prefix, job prefix, running
-- prefix, tokens, retry prefix, retry key seconds, first reads ('off', 'job' or
-- 'job+abort'), page, this worker's claims of every lane, number of lanes (1: the most
-- urgent alone, between polls: not a turn), the lanes' names, then (job, cap) pairs of the
-- registry.
-- Returns {next due ms or -1 (the first deferred job, or the first lapse of a lease of a
-- capped kind the claim held a job back for), ready jobs of the first lane held by a
-- claim, then per job: id, score, lane index, and its first read
-- (worker.runtime.first_read): data, try (nil: not read), aborted}.
local now, lease, wanted, lower = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local value, depth, every = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local ip, jp, rp, tokens = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local retry, retry_s, page = ARGV[12], ARGV[13], tonumber(ARGV[15])
local spin, n = tonumber(ARGV[16]), tonumber(ARGV[17])
local turn_key, bell, aborts = KEYS[n + 1], KEYS[n + 4], KEYS[n + 5]
local reads = ARGV[14]
local paused, kinds = {}, false
for _, member in ipairs(redis.call('smembers', KEYS[n + 2])) do
  paused[member] = true
  if string.sub(member, 1, 4) == 'job:' then kinds = true end
end
local limits = {}
for i = 18 + n, #ARGV, 2 do limits[ARGV[i]] = tonumber(ARGV[i + 1]); kinds = true end
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
-- A capped kind's free slots, and when the first of its leases lapses (ms from now): a
-- dead worker's slot comes back then, and nobody rings for it.
local free, lapses, held_back = {}, {}, nil
local function room_for(kind)
  if free[kind] == nil then
    local count = 0
    for _, id in ipairs(redis.call('smembers', rp .. kind)) do
      local ttl = redis.call('pttl', ip .. id)
      if ttl == -2 then redis.call('srem', rp .. kind, id)
      else
        count = count + 1
        if ttl >= 0 and (lapses[kind] == nil or ttl < lapses[kind]) then lapses[kind] = ttl end
      end
    end
    free[kind] = limits[kind] - count
  end
  return free[kind]
end
-- arq's first read of a job (worker.runtime.first_read). Its reads first: where a key is of
-- the wrong type nothing is answered or counted, for arq's own read to meet. The abort
-- request stays for arq's end of the job to take (it fails the job unrun).
local function first_read(id)
  if reads == 'off' then return {false, false, 0} end
  local aborted = false
  if reads == 'job+abort' then aborted = redis.pcall('zscore', aborts, id) end
  local data = redis.pcall('get', jp .. id)
  if type(aborted) == 'table' or type(data) == 'table' then return {false, false, 0} end
  local try = redis.pcall('incr', retry .. id)
  if type(try) ~= 'number' then return {false, false, 0} end
  redis.call('expire', retry .. id, retry_s)
  return {data, try, aborted and 1 or 0}
end
local claimed, taken, lower_taken, more = {-1, 0}, 0, 0, false
local function full(lane)
  return taken >= wanted or (lane > 1 and lower_taken >= lower)
end
-- One ready entry of a lane, claimed unless running, paused or capped; true: read no
-- further in this lane.
local capped = 0
local function consider(lane, id, score)
  if redis.call('exists', ip .. id) == 1 then
    if lane == 1 then claimed[2] = claimed[2] + 1 end
    return false
  end
  if full(lane) then more = true; return true end
  local kind = nil
  if kinds then
    -- pcall: a job key of the wrong type is claimed as it is, for arq's read of it
    -- to meet and quarantine (worker.runtime.claiming), not fail every claim.
    local head = redis.pcall('getrange', jp .. id, 0, 200)
    if type(head) == 'string' then kind = string.match(head, '"f":"([^"]+)"') end
  end
  if kind and paused['job:' .. kind] then return false end
  if kind and limits[kind] then
    if room_for(kind) <= 0 then
      capped = capped + 1
      if lapses[kind] and (held_back == nil or lapses[kind] < held_back) then
        held_back = lapses[kind]
      end
      return false
    end
    free[kind] = free[kind] - 1
    redis.call('sadd', rp .. kind, id)
  end
  redis.call('set', ip .. id, value, 'PX', lease)
  for _, field in ipairs({id, score, lane}) do claimed[#claimed + 1] = field end
  for _, answer in ipairs(first_read(id)) do claimed[#claimed + 1] = answer end
  taken = taken + 1
  if lane > 1 then lower_taken = lower_taken + 1 end
  return false
end
for _, lane in ipairs(order) do
  if not paused['lane:' .. ARGV[17 + lane]] and not full(lane) then
    -- A page at a time, to depth. Past a page's worth of capped jobs, one more page, at a
    -- place in the depth that moves on with each claim of this worker, and no further.
    local offset, jumped, pages = 0, false, math.ceil(depth / page)
    capped = 0
    while offset < depth do
      local size = math.min(page, depth - offset)
      local ids = redis.call('zrangebyscore', KEYS[lane], '-inf', now,
        'WITHSCORES', 'LIMIT', offset, size)
      local stop = #ids < 2 * size
      for i = 1, #ids, 2 do
        if consider(lane, ids[i], ids[i + 1]) then stop = true; break end
      end
      if stop or jumped then break end
      offset = offset + size
      if capped >= page and pages > 2 then
        offset, jumped = math.max(offset, page * (1 + spin % (pages - 1))), true
      end
    end
  end
end
if taken > 0 and n > 1 then redis.call('incr', turn_key) end
if more then
  redis.call('lpush', bell, 1)
  redis.call('ltrim', bell, 0, tokens - 1)
end
if taken == 0 then
  if held_back then claimed[1] = now + held_back end
  for lane = 1, n do
    if not paused['lane:' .. ARGV[17 + lane]] then
      local first = redis.call('zrangebyscore', KEYS[lane], '(' .. now, '+inf',
        'WITHSCORES', 'LIMIT', 0, 1)
      if first[2] and (claimed[1] == -1 or tonumber(first[2]) < claimed[1]) then
        claimed[1] = tonumber(first[2])
      end
    end
  end
end
return claimed
