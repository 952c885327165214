"""Every Lua script paperbot runs on Redis, in one place: each is one atomic step, with its keys and
arguments written above it. The stores register them (``bot.store.records``, ``coordination``, ``library``)."""

# Marks each paper seen and queues its deliveries in one atomic step; a paper already in the seen-set,
# or committed first by some other process (SADD answers 0), is skipped with its deliveries, so nothing
# is queued twice. Each newly seen id is also appended to its period's list; the periods that left the
# window take their ids out of the seen-set with them. Each newly seen paper is also recorded in this
# week's routed bucket (its first-seen upvotes as "<id>|^", each destination it was routed to as
# "<id>|<destination>"), so a paper that rises later reaches only the destinations that did not get it;
# the routed bucket that left the window goes.
# KEYS: outbox, recent, seen, seen:<this period>, seen:periods, then paper:<id>... (ARGV[3] of them),
# then routed:<this week>, routed:<the week that left the window>.
# ARGV: cache ttl, now (ms), papers, this period, the newest period that left the window, paper key
# prefix, seen key prefix, routed bucket ttl (0: papers are not followed), vector key prefix, then per
# paper: id, doc,
# upvotes, n, n × (destination, why, watched: 1 if it has an upvote threshold, so it is recorded).
COMMIT = """
local VECTOR_BUCKETS = 2039
local ttl, now, papers = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local track = tonumber(ARGV[8])
local first_paper = #KEYS - 2 - papers + 1
local routed = KEYS[#KEYS - 1]
-- The cache forgets in step with its index of recent papers, whatever the server's clock says.
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl * 1000, 'LIMIT', 0, 5000)
for _, id in ipairs(old) do
  redis.call('DEL', ARGV[6] .. id)
  local h = 0  -- vector_bucket(id), as in Python
  for c = 1, #id do h = (h * 31 + string.byte(id, c)) % VECTOR_BUCKETS end
  redis.call('HDEL', ARGV[9] .. h, id)
end
if #old > 0 then redis.call('ZREM', KEYS[2], unpack(old)) end
for _, period in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[5], 'LIMIT', 0, 4)) do
  local list, ids = ARGV[7] .. period, {}
  for id in string.gmatch(redis.call('GET', list) or '', '[^\\n]+') do
    ids[#ids + 1] = id
    if #ids == 4000 then redis.call('SREM', KEYS[3], unpack(ids)) ids = {} end
  end
  if #ids > 0 then redis.call('SREM', KEYS[3], unpack(ids)) end
  redis.call('DEL', list)
  redis.call('ZREM', KEYS[5], period)
end
local committed = {}
local i = 10
for k = first_paper, first_paper + papers - 1 do
  local id, doc, upvotes, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  i = i + 4
  if redis.call('SADD', KEYS[3], id) == 1 then
    redis.call('APPEND', KEYS[4], id .. '\\n')
    redis.call('SET', KEYS[k], doc, 'EX', ttl)
    redis.call('ZADD', KEYS[2], now, id)
    if track > 0 then redis.call('HSET', routed, id .. '|^', upvotes) end
    for d = 0, n - 1 do
      local dest = ARGV[i + 3 * d]
      redis.call('XADD', KEYS[1], '*', 'dest', dest, 'paper', id, 'why', ARGV[i + 3 * d + 1])
      if track > 0 and ARGV[i + 3 * d + 2] == '1' then redis.call('HSET', routed, id .. '|' .. dest, 1) end
    end
    committed[#committed + 1] = id
  end
  i = i + 3 * n
end
if #committed > 0 then redis.call('ZADD', KEYS[5], ARGV[4], ARGV[4]) end
if #committed > 0 and track > 0 then
  redis.call('EXPIRE', routed, track)
  redis.call('DEL', KEYS[#KEYS])
end
return committed
"""

# Settles one outbox entry atomically: records it in this week's bucket of its destination (dropping the
# bucket that left the window), acknowledges and deletes it, forgets its attempts, notes the post time.
# KEYS: this week's posts bucket, the fallen bucket, outbox, attempts, lastpost, posting.
# ARGV: bucket ttl, group, entry id, destination, posted at ("" = not posted), then field, value pairs.
SETTLE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
redis.call('DEL', KEYS[2])
redis.call('XACK', KEYS[3], ARGV[2], ARGV[3])
redis.call('XDEL', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
redis.call('HDEL', KEYS[6], ARGV[3])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[5], ARGV[4], ARGV[5]) end
return 1
"""

# Queues edits, at most one per message per spacing: a message edited within the spacing gets its edit
# parked in "edits:later" until then. Parked edits whose time came are queued first (the newest ask
# for a message replaces a parked one: it renders the paper as it is by then anyway).
# KEYS: outbox, edits:later. ARGV: now (ms), spacing (ms), edited key prefix, then per edit: dest,
# paper, why, message.
QUEUE_EDITS = """
local now, spacing, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local queued = 0
local function ask(dest, paper, why, message)
  local guard = prefix .. dest .. ':' .. message
  if redis.call('SET', guard, '1', 'NX', 'PX', spacing) then
    redis.call('XADD', KEYS[1], '*', 'dest', dest, 'paper', paper, 'why', why, 'edit', message)
    redis.call('ZREM', KEYS[2], cjson.encode({dest, paper, why, message}))
    queued = queued + 1
  else
    redis.call('ZADD', KEYS[2], now + redis.call('PTTL', guard), cjson.encode({dest, paper, why, message}))
  end
end
for _, parked in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', KEYS[2], parked)
  local e = cjson.decode(parked)
  ask(e[1], e[2], e[3], e[4])
end
for i = 4, #ARGV, 4 do ask(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]) end
return queued
"""

# Queues each late delivery whose paper is still followed (a routed bucket kept has its record) and
# was never routed to that destination, and records that it now was.
# KEYS: outbox, then the routed buckets kept. ARGV: per delivery: destination, paper, why.
QUEUE_LATE = """
local queued = 0
for i = 1, #ARGV, 3 do
  local dest, paper = ARGV[i], ARGV[i + 1]
  for k = 2, #KEYS do
    if redis.call('HEXISTS', KEYS[k], paper .. '|^') == 1 then
      if redis.call('HSETNX', KEYS[k], paper .. '|' .. dest, 1) == 1 then
        redis.call('XADD', KEYS[1], '*', 'dest', dest, 'paper', paper, 'why', ARGV[i + 2])
        queued = queued + 1
      end
      break
    end
  end
end
return queued
"""

# Queues one outbox entry unless its guard exists, and sets the guard: both or neither.
# KEYS: guard, outbox. ARGV: guard ttl (s), then the entry's field, value pairs.
QUEUE_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
  return 1
end
return 0
"""

# Renew or release a lock only if this owner still holds it (it may have expired and been taken).
RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"

RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

# Posting turns per key, on Redis's clock so every process agrees: one holder at a time, and the next
# turn no sooner than the gap after the last one ended. TAKE returns 0 (yours) or ms to wait.
# KEYS: turn:<key>; TAKE ARGV: owner, hold ms, poll ms; END ARGV: owner, gap ms.
NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"
TAKE_TURN = (
    NOW
    + """
local holder = redis.call('HGET', KEYS[1], 'holder')
local held_until = tonumber(redis.call('HGET', KEYS[1], 'held_until') or '0')
if holder and holder ~= ARGV[1] and held_until > now then
  return math.min(held_until - now, tonumber(ARGV[3]))
end
local free_at = tonumber(redis.call('HGET', KEYS[1], 'free_at') or '0')
if free_at > now then return free_at - now end
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'held_until', now + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 60000)
return 0
"""
)
END_TURN = (
    NOW
    + """
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then redis.call('HDEL', KEYS[1], 'holder', 'held_until') end
local free_at = math.max(tonumber(redis.call('HGET', KEYS[1], 'free_at') or '0'), now + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'free_at', free_at)
redis.call('PEXPIRE', KEYS[1], free_at - now + 60000)
return free_at
"""
)

# KEYS: saved:<user>, library, library:holders; ARGV: paper id, score, doc. Returns 1 if newly saved.
SAVE = """
if redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
return 1
"""

# KEYS: saved:<user>, library, library:holders; ARGV: paper id. Returns 1 if it was saved.
UNSAVE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[3], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
"""
