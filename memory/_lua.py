"""Redis scripts of the bank. Each is idempotent, so a retried pipeline or a replay after a crash
applies an operation at most once, and each publishes to the event stream in the same atomic step
as its metadata change: an event is in the stream exactly when its hash was created.

Every script moves the shard's watermark (the highest log position Redis has applied) forward and
returns the watermark it found: one below what the bank knows it applied means Redis lost data.
"""

from __future__ import annotations

_BUMP = """
local function bump(lsn_arg)
  local lsn = tonumber(lsn_arg)
  local w = tonumber(redis.call('GET', KEYS[4]) or '0')
  if lsn > w then redis.call('SET', KEYS[4], lsn_arg) end
  return w
end
"""

# KEYS: event hash, stream zset, event stream, watermark, pinned set
# ARGV: event_id, score, lsn, maxlen, publish, pinned, stream_id, the hash as a JSON object of strings
ADD = (
    _BUMP
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return bump(ARGV[3]) end
local f = cjson.decode(ARGV[8])
local flat = {}
for k, v in pairs(f) do
  flat[#flat + 1] = k
  flat[#flat + 1] = v
end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if ARGV[6] == '1' then redis.call('SADD', KEYS[5], ARGV[1]) end
if ARGV[5] == '1' then
  local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'op', 'add', 'event_id', ARGV[1],
    'stream_id', ARGV[7], 'start_pts_s', f['start_pts_s'] or '', 'end_pts_s', f['end_pts_s'] or '',
    'start_wall_s', f['start_wall_s'] or '', 'end_wall_s', f['end_wall_s'] or '')
  redis.call('HSET', KEYS[1], 'entry_id', id)
end
return bump(ARGV[3])
"""
)

# KEYS: event hash, stream zset, event stream, watermark, pinned set
# ARGV: event_id, lsn, maxlen, publish, stream_id
DELETE = (
    _BUMP
    + """
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
if existed == 1 and ARGV[4] == '1' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'op', 'delete', 'event_id', ARGV[1],
    'stream_id', ARGV[5])
end
return bump(ARGV[2])
"""
)

# KEYS: event hash, (unused), event stream, watermark, pinned set
# ARGV: event_id, lsn, maxlen, publish, stream_id, pinned ('1' or '0')
PIN = (
    _BUMP
    + """
local changed = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'pinned') ~= ARGV[6] then
    redis.call('HSET', KEYS[1], 'pinned', ARGV[6])
    changed = 1
  end
  if ARGV[6] == '1' then redis.call('SADD', KEYS[5], ARGV[1]) else redis.call('SREM', KEYS[5], ARGV[1]) end
  if changed == 1 and ARGV[4] == '1' then
    local op = 'unpin'
    if ARGV[6] == '1' then op = 'pin' end
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'op', op, 'event_id', ARGV[1],
      'stream_id', ARGV[5])
  end
end
return bump(ARGV[2])
"""
)

# KEYS: watermark; ARGV: lsn
BUMP = """
local w = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > w then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""
