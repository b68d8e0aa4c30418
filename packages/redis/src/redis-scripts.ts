import { Script } from './redis-connection.js';

/**
 * The group's redelivery rules, as Lua so that each runs atomically on the server and reads the
 * server's clock (no client clock skew). Every redelivery goes through CLAIM: it XCLAIMs, which
 * moves the entry to the claiming consumer and bumps the entry's delivery counter in the PEL;
 * that counter is the delivery's `attempt`, so it survives any consumer restart.
 *
 * A nack (with or without delay) and a release on close put the entry id in the group's delay
 * set, scored by the server time it comes due; the entry stays pending meanwhile. CLAIM takes
 * (1) delay-set entries now due, then (2) entries idle past the ack timeout whose consumer died
 * or hangs, skipping those still waiting out a delay, so a long delay is never cut short by the
 * idle rule. Nothing here depends on the consumer that nacked still being alive.
 */

/**
 * KEYS: stream, delay set. ARGV: group, consumer, min idle ms, count, prune idle ms (0 = no pruning).
 * Returns { { {id, {field, value, ...}, deliveries}, ... }, ms until the next delayed entry is due or -1 }.
 */
export const CLAIM = new Script(`
local stream, delayed = KEYS[1], KEYS[2]
local group, consumer, minIdle, count = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local pruneIdle = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local function claim(id, idle)
  local got = redis.call('XCLAIM', stream, group, consumer, idle, id)
  local entry = got[1]
  if type(entry) == 'table' then
    local p = redis.call('XPENDING', stream, group, id, id, 1)
    out[#out + 1] = { entry[1], entry[2], p[1][4] }
  end
end
if count > 0 then
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, count)
  for _, id in ipairs(due) do
    redis.call('ZREM', delayed, id)
    claim(id, 0)
  end
end
local start, scanned = '-', 0
while #out < count and scanned < 1000 do
  local page = redis.call('XPENDING', stream, group, 'IDLE', minIdle, start, '+', 100)
  for _, p in ipairs(page) do
    if #out >= count then break end
    if not redis.call('ZSCORE', delayed, p[1]) then claim(p[1], minIdle) end
  end
  if #page < 100 then break end
  scanned = scanned + #page
  start = '(' .. page[#page][1]
end
if pruneIdle > 0 then
  -- Consumers of dead processes linger in the group; one with nothing pending can go (XREADGROUP
  -- re-creates a live one that was merely quiet for that long).
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
    local info = {}
    for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
    if info['pending'] == 0 and info['idle'] > pruneIdle and info['name'] ~= consumer then
      redis.call('XGROUP', 'DELCONSUMER', stream, group, info['name'])
    end
  end
end
local nextDue = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
local wait = -1
if #nextDue > 0 then wait = math.max(0, tonumber(nextDue[2]) - now) end
return { out, wait }
`);

/**
 * KEYS: stream, delay set. ARGV: group, consumer, delay ms, id... Puts back the ids this consumer
 * still owns; an id another consumer has meanwhile claimed (this one was too slow) is left alone,
 * so a late nack cannot hand out the other consumer's delivery a second time. Returns how many.
 */
export const PUT_BACK = new Script(`
local stream, delayed = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
local n = 0
for i = 4, #ARGV do
  local p = redis.call('XPENDING', stream, group, ARGV[i], ARGV[i], 1)
  if #p > 0 and p[1][2] == consumer then
    redis.call('ZADD', delayed, due, ARGV[i])
    n = n + 1
  end
end
return n
`);

/** KEYS: stream. ARGV: group, consumer. Deletes the consumer if nothing is pending for it (deleting drops its PEL). */
export const DELETE_IDLE_CONSUMER = new Script(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
`);
