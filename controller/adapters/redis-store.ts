import { Redis } from 'ioredis';
import { bucketOf, type FraudBlock, type FraudPolicy } from '../core/fraud-guard.ts';
import type {
  AttemptAudit,
  AttemptOutcome,
  AuditWrite,
  CreateResult,
  DeleteResult,
  FraudPublish,
  HistoryRetention,
  Idempotency,
  MessageRef,
  OutboxEntry,
  OutboxRetry,
  ProofResult,
  ProofSpend,
  ResendResult,
  SendQuota,
  StateStore,
} from '../verifier/state-store.ts';
import { ENROLLMENT_CHANGED, OUTBOX_KEEP_MS, REPLACEMENT_REFUSED, StoreUnavailableError } from '../verifier/state-store.ts';
import type {
  CodeMac,
  Delivery,
  Enrollment,
  HistoryEvent,
  HistoryPage,
  HistoryQuery,
  LockoutState,
  VerificationRecord,
  VerificationStatus,
} from '../verifier/types.ts';

/** How long a finished verification stays readable after it expires. */
const KEEP_AFTER_EXPIRY_MS = 24 * 3_600_000;
/** How many events one page of history examines at most (see StateStore.listHistory). */
const HISTORY_SCAN = 5000;
/** How many events are read from Redis at a time while a page is filled. */
const HISTORY_BATCH = 500;
/** How long a lockout counter lives without a new failure. */
const LOCKOUT_TTL_MS = 30 * 24 * 3_600_000;

// QUOTAS takes one send from every quota or from none. The quotas are KEYS[first..] with three
// ARGV each from ARGV[arg]: 'w', limit, ms until the window ends (a window's key names its start);
// or 'b', tokens per second, burst. It returns false when taken, or {index (1-based), retry ms}.
const QUOTAS = `
local function quotas(first, arg, now)
  local tokens = {}
  for i = first, #KEYS do
    local j = arg + (i - first) * 3
    local a = tonumber(ARGV[j + 1]); local b = tonumber(ARGV[j + 2])
    if ARGV[j] == 'w' then
      if tonumber(redis.call('GET', KEYS[i]) or '0') >= a then return {i - first + 1, b} end
    else
      local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
      local t = tonumber(state[1])
      if t == nil then t = b else t = math.min(b, t + math.max(0, now - tonumber(state[2])) / 1000 * a) end
      if t < 1 then return {i - first + 1, math.ceil((1 - t) / a * 1000)} end
      tokens[i] = t
    end
  end
  for i = first, #KEYS do
    local j = arg + (i - first) * 3
    if ARGV[j] == 'w' then
      redis.call('INCR', KEYS[i])
      redis.call('PEXPIRE', KEYS[i], ARGV[j + 2])
    else
      -- Full precision (tostring keeps 14 digits); kept until it would have refilled, and at least an hour.
      redis.call('HSET', KEYS[i], 'tokens', string.format('%.17g', tokens[i] - 1), 'ts', string.format('%d', now))
      local refillMs = math.ceil(tonumber(ARGV[j + 2]) / tonumber(ARGV[j + 1]) * 1000)
      redis.call('PEXPIRE', KEYS[i], string.format('%d', math.max(3600000, refillMs + 60000)))
    end
  end
  return false
end
`;

// HISTORY appends an event (JSON, without its seq) of a user to a store's history: keys base
// (events by seq), base:t (seqs by time), base:seq (the counter), base:u:<user> (the user's seqs,
// so that a user's history is read without scanning the store's) and the set of stores with a
// history (for the sweep); it trims the store's by age (events before minTime) and by count (the
// newest maxEvents stay), from the user indexes too.
const HISTORY = `
local function unindex(base, members)
  for _, m in ipairs(members) do
    local ok, e = pcall(cjson.decode, m)
    if ok and type(e) == 'table' and e.user then redis.call('ZREM', base .. ':u:' .. e.user, e.seq) end
  end
end
-- trimCount removes the oldest by seq beyond maxEvents (at most 1000 a call: a lowered bound is
-- reached over several calls), and the same seqs from the time and user indexes.
local function trimCount(base, byTime, maxEvents)
  local n = redis.call('ZCARD', base)
  local max = tonumber(maxEvents)
  if n <= max then return 0 end
  local excess = math.min(n - max, 1000)
  local gone = redis.call('ZRANGE', base, 0, excess - 1, 'WITHSCORES')
  local members = {}
  for i = 1, #gone, 2 do
    redis.call('ZREM', byTime, gone[i + 1])
    members[#members + 1] = gone[i]
  end
  unindex(base, members)
  redis.call('ZREMRANGEBYRANK', base, 0, excess - 1)
  return excess
end
local function trimOld(base, byTime, minTime, max)
  local old = redis.call('ZRANGEBYSCORE', byTime, '-inf', '(' .. minTime, 'LIMIT', 0, max)
  for _, s in ipairs(old) do
    unindex(base, redis.call('ZRANGEBYSCORE', base, s, s))
    redis.call('ZREMRANGEBYSCORE', base, s, s)
    redis.call('ZREM', byTime, s)
  end
  return #old
end
local function history(base, byTime, counter, stores, event, user, time, minTime, maxEvents)
  local seq = redis.call('INCR', counter)
  local stored = '{"seq":' .. seq .. ',' .. string.sub(event, 2)
  redis.call('ZADD', base, seq, stored)
  redis.call('ZADD', byTime, time, seq)
  redis.call('ZADD', base .. ':u:' .. user, seq, seq)
  redis.call('SADD', stores, base)
  -- Exactly the events older than minTime go: times need not follow seqs (replicas, concurrent
  -- requests), and events of one attempt share a time.
  trimOld(base, byTime, minTime, 1000)
  trimCount(base, byTime, maxEvents)
  return seq, stored
end
-- withNumbers adds the old and new numbers (masks, or JSON null) to an event.
local function withNumbers(event, old, new)
  return string.sub(event, 1, -2) .. ',"numbers":{"old":' .. old .. ',"new":' .. new .. '}}'
end
local function maskOf(value)
  if value == nil or value == cjson.null then return 'null' end
  return cjson.encode(value)
end
`;

// OUTBOX puts an entry (see OutboxEntry) in a store's outbox: keys ob (entries by seq), ob:r (the
// seq counter, #seq, and each failed entry's "attempts nextAt") and the set of outboxes (for the
// sweep); key orders the entry, time is when the change happened, body its JSON (OutboxBody).
const OUTBOX = `
local function publish(ob, state, outboxes, key, time, body)
  local s = redis.call('HINCRBY', state, '#seq', 1)
  redis.call('ZADD', ob, s, '{"seq":' .. s .. ',"key":' .. cjson.encode(key) .. ',"time":' .. time .. ',"body":' .. body .. '}')
  redis.call('SADD', outboxes, ob)
end
-- publishHistory puts a recorded history event (as history() stored it) in the outbox.
local function publishHistory(ob, state, outboxes, user, time, stored, extra)
  publish(ob, state, outboxes, user, time, '{"kind":"history","event":' .. stored .. extra .. '}')
end
`;

// PROOF restates proofRefusal: the authentication at key, spent as proof for user's number at
// now, within maxAge; false when it may be spent, else why not.
const PROOF = `
local function proofRefusal(key, user, number, now, maxAge)
  if redis.call('EXISTS', key) == 0 then return 'not-found' end
  local p = cjson.decode(redis.call('HGET', key, 'rec'))
  if p.purpose ~= 'authenticate' then return 'not-found' end
  if p.user ~= user then return 'other-user' end
  local at = redis.call('HGET', key, 'approvedAt')
  if redis.call('HGET', key, 'status') ~= 'approved' or not at then return 'not-approved' end
  if redis.call('HGET', key, 'proofUsed') then return 'used' end
  if tonumber(now) - tonumber(at) > tonumber(maxAge) then return 'stale' end
  if p.to ~= number then return 'other-number' end
  return false
end
`;

// DELIVERY records a verification's delivery news unless newer news is already there. With
// sent = 1 it is the send's own record, which names its message; otherwise news of a message (a
// receipt) applies only while that message is the one recorded, and never undoes its final status.
const DELIVERY = `
local function delivery(key, news, at, sent)
  local current = redis.call('HGET', key, 'deliveryAt')
  if not current or tonumber(current) > tonumber(at) then return 0 end
  if sent ~= 1 then
    local new = cjson.decode(news)
    local old = cjson.decode(redis.call('HGET', key, 'delivery'))
    if new.messageId and old.messageId ~= new.messageId then return 0 end
    local final = {delivered = true, undelivered = true, failed = true}
    if old.messageId == new.messageId and final[old.status] and not final[new.status] then return 0 end
  end
  redis.call('HSET', key, 'delivery', news, 'deliveryAt', at)
  return 1
end
`;

// Every script takes times from the caller and sets relative expiries (PEXPIRE), so that a
// replica's clock, or a test's, never makes a key vanish early. Scripts with a variable number of
// keys (the quotas) take the count as their first argument.
const SCRIPTS = {
  create: {
    // KEYS[1] the verification, KEYS[2] its Idempotency-Key ('' for none), KEYS[3] the proof a
    // replacement spends ('' for none), KEYS[4..] its quotas. ARGV: fingerprint, key ttl, id,
    // keep, now, the proof's longest age, the user, the number replaced, the number of record
    // fields, the fields, then the quotas' arguments. The proof rule restates proofRefusal.
    keys: undefined,
    lua: `${QUOTAS}${PROOF}
local existing = KEYS[2] ~= '' and redis.call('GET', KEYS[2])
if existing then
  local sep = string.find(existing, ' ', 1, true)
  local fp = string.sub(existing, 1, sep - 1)
  return {fp == ARGV[1] and 'replayed' or 'conflict', string.sub(existing, sep + 1)}
end
if KEYS[3] ~= '' then
  local refusal = proofRefusal(KEYS[3], ARGV[7], ARGV[8], ARGV[5], ARGV[6])
  if refusal then return {'proof', refusal} end
end
local fields = tonumber(ARGV[9])
local refused = quotas(4, 10 + fields, tonumber(ARGV[5]))
if refused then return {'limited', '', refused[1], refused[2]} end
if KEYS[3] ~= '' then redis.call('HSET', KEYS[3], 'proofUsed', '1') end
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[3], 'PX', ARGV[2]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 10, 9 + fields))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'created', ARGV[3]}`,
  },
  attempt: {
    // KEYS[2] and KEYS[6] are the prefixes of the store's enrollment and lockout keys (the user
    // completes them); KEYS[3..5] the store's history keys and KEYS[7] the set of histories (see
    // HISTORY). ARGV[1] is now; ARGV[2..4] the audit events for an approval, a wrong code with
    // attempts left and a wrong code on the last attempt, ARGV[5] for a lockout ('' for none);
    // ARGV[6..7] the history's minTime and maxEvents; ARGV[8] the lockout key's time to live;
    // ARGV[9] the failure that ends an authentication whose number is no longer enrolled, ARGV[10]
    // the one that ends an enrollment that may not replace another number; ARGV[11] the outcomes
    // published (",approved,locked," …) to the outbox KEYS[8..10] (see OUTBOX); then keyId and
    // MAC pairs: the candidates. MACs are of codes the caller cannot choose bytes of, so
    // comparing them with == leaks nothing a guess could use.
    keys: 10,
    lua: `${HISTORY}${OUTBOX}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local now = tonumber(ARGV[1])
local counted, approved, event, outcome, lockedUntil, lockedNow = 0, 0, '', '', 0, 0
local rec = nil
if redis.call('HGET', KEYS[1], 'status') == 'pending' then
  rec = cjson.decode(redis.call('HGET', KEYS[1], 'rec'))
  local auth = rec.purpose == 'authenticate'
  local lockKey = KEYS[6] .. rec.user
  local failures = 0
  if auth then
    failures = tonumber(redis.call('HGET', lockKey, 'failures') or '0')
    local untilMs = tonumber(redis.call('HGET', lockKey, 'lockedUntil') or '0')
    if untilMs > now then lockedUntil = untilMs elseif untilMs > 0 then failures = 0 end
  end
  if lockedUntil > 0 then
    -- locked out: refused, uncounted
  elseif now >= tonumber(redis.call('HGET', KEYS[1], 'expiresAt')) then
    redis.call('HSET', KEYS[1], 'status', 'expired')
  else
    local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts'))
    local max = tonumber(redis.call('HGET', KEYS[1], 'maxAttempts'))
    local stored = cjson.decode(redis.call('HGET', KEYS[1], 'code'))
    for i = 12, #ARGV - 1, 2 do
      if ARGV[i] == stored.keyId and ARGV[i + 1] == stored.mac then approved = 1 end
    end
    local current = nil
    if attempts < max and approved == 1 and rec.purpose ~= 'helpdesk' then
      local e = redis.call('GET', KEYS[2] .. rec.user)
      if e then current = cjson.decode(e) end
    end
    if attempts < max and approved == 1 and auth and rec.numberFrom ~= 'directory' and (current == nil or current.to ~= rec.to) then
      -- the number this code went to is no longer the user's factor: the verification ends, uncounted
      approved = 0
      redis.call('HSET', KEYS[1], 'status', 'canceled', 'failure', ARGV[9])
    elseif attempts < max and approved == 1 and rec.purpose == 'enroll' and current ~= nil and current.to ~= rec.to and rec.replaces ~= '*' and rec.replaces ~= current.to then
      -- the user has another number than the one this enrollment may replace (replacementRefused)
      approved = 0
      redis.call('HSET', KEYS[1], 'status', 'canceled', 'failure', ARGV[10])
    elseif attempts < max then
      attempts = attempts + 1
      counted = 1
      if approved == 1 then
        redis.call('HSET', KEYS[1], 'attempts', attempts, 'status', 'approved', 'approvedAt', ARGV[1])
        event, outcome = ARGV[2], 'approved'
        if auth then
          redis.call('DEL', lockKey)
        elseif rec.purpose == 'enroll' then
          local masked = rec.maskedTo and (',"masked":' .. cjson.encode(rec.maskedTo)) or ''
          redis.call('SET', KEYS[2] .. rec.user, '{"user":' .. cjson.encode(rec.user) .. ',"to":' .. cjson.encode(rec.to) .. ',"enrolledAt":' .. ARGV[1] .. ',"verificationId":' .. cjson.encode(rec.id) .. masked .. '}')
          if event ~= '' then event = withNumbers(event, current and maskOf(current.masked) or 'null', maskOf(rec.maskedTo)) end
        end
      else
        if attempts >= max then
          redis.call('HSET', KEYS[1], 'attempts', attempts, 'status', 'max_attempts_reached')
          event, outcome = ARGV[4], 'exhausted'
        else
          redis.call('HSET', KEYS[1], 'attempts', attempts)
          event, outcome = ARGV[3], 'wrong'
        end
        if auth then
          failures = failures + 1
          local untilMs = 0
          if failures >= tonumber(rec.lockout.threshold) then untilMs = now + tonumber(rec.lockout.durationMs); lockedNow = 1; lockedUntil = untilMs end
          redis.call('HSET', lockKey, 'failures', failures, 'lockedUntil', string.format('%d', untilMs))
          -- The count lives ARGV[8] after the last failure, and a lockout at least as long as itself.
          redis.call('PEXPIRE', lockKey, string.format('%d', math.max(tonumber(ARGV[8]), untilMs - now + 1000)))
        end
      end
    end
  end
end
if event ~= '' then
  local _, stored = history(KEYS[3], KEYS[4], KEYS[5], KEYS[7], event, rec.user, ARGV[1], ARGV[6], ARGV[7])
  if string.find(ARGV[11], ',' .. outcome .. ',', 1, true) then publishHistory(KEYS[8], KEYS[9], KEYS[10], rec.user, ARGV[1], stored, ',"outcome":"' .. outcome .. '"') end
end
if lockedNow == 1 and ARGV[5] ~= '' then
  local _, stored = history(KEYS[3], KEYS[4], KEYS[5], KEYS[7], ARGV[5], rec.user, ARGV[1], ARGV[6], ARGV[7])
  if string.find(ARGV[11], ',locked,', 1, true) then
    publishHistory(KEYS[8], KEYS[9], KEYS[10], rec.user, ARGV[1], stored, ',"outcome":"locked","lockedUntil":' .. string.format('%d', lockedUntil))
  end
end
-- A lockout this attempt started is not one that refused it.
if lockedNow == 1 then lockedUntil = 0 end
return {counted, approved, redis.call('HGETALL', KEYS[1]), string.format('%d', lockedUntil), lockedNow}`,
  },
  deleteEnrollment: {
    // KEYS[1] the enrollment, KEYS[2..5] the history keys, KEYS[6] the proof it spends ('' for
    // none); ARGV: the event ('' for none), the user, its time, minTime, maxEvents, the proof's
    // longest age, and '1' to publish the event to the outbox KEYS[7..9] (see OUTBOX). It answers
    // {'deleted', enrollment}, {'none'} or {'proof', why}.
    keys: 9,
    lua: `${HISTORY}${OUTBOX}${PROOF}
local e = redis.call('GET', KEYS[1])
if not e then return {'none'} end
if KEYS[6] ~= '' then
  local refusal = proofRefusal(KEYS[6], ARGV[2], cjson.decode(e).to, ARGV[3], ARGV[6])
  if refusal then return {'proof', refusal} end
  redis.call('HSET', KEYS[6], 'proofUsed', '1')
end
redis.call('DEL', KEYS[1])
if ARGV[1] ~= '' then
  local _, stored = history(KEYS[2], KEYS[3], KEYS[4], KEYS[5], withNumbers(ARGV[1], maskOf(cjson.decode(e).masked), 'null'), ARGV[2], ARGV[3], ARGV[4], ARGV[5])
  if ARGV[7] == '1' then publishHistory(KEYS[7], KEYS[8], KEYS[9], ARGV[2], ARGV[3], stored, '') end
end
return {'deleted', e}`,
  },
  clearLockout: {
    // KEYS[1] the lockout, KEYS[2..5] the history keys, KEYS[6..8] the outbox (see OUTBOX); ARGV:
    // now, the event, the user, minTime, maxEvents, '1' to publish the event.
    keys: 8,
    lua: `${HISTORY}${OUTBOX}
local untilMs = tonumber(redis.call('HGET', KEYS[1], 'lockedUntil') or '0')
redis.call('DEL', KEYS[1])
local _, stored = history(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[2], ARGV[3], ARGV[1], ARGV[4], ARGV[5])
if ARGV[6] == '1' then publishHistory(KEYS[6], KEYS[7], KEYS[8], ARGV[3], ARGV[1], stored, '') end
return untilMs > tonumber(ARGV[1]) and 1 or 0`,
  },
  sweepHistory: {
    // KEYS[1..2] a store's events and time index, KEYS[3] how far its events are indexed by user
    // (the last seq); ARGV: minTime, maxEvents. One bounded step: at most 1000 events past their
    // age, 1000 beyond the count, and 1000 events indexed by user that were not (history written
    // by an earlier version; indexing twice is harmless, and here no trim can race it). It
    // returns how much it did: 0 when the store is done.
    keys: 3,
    lua: `${HISTORY}
local done = trimOld(KEYS[1], KEYS[2], ARGV[1], 1000) + trimCount(KEYS[1], KEYS[2], ARGV[2])
local mark = redis.call('GET', KEYS[3]) or '0'
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. mark, '+inf', 'WITHSCORES', 'LIMIT', 0, 1000)
for i = 1, #members, 2 do
  local ok, e = pcall(cjson.decode, members[i])
  if ok and type(e) == 'table' and e.user then redis.call('ZADD', KEYS[1] .. ':u:' .. e.user, members[i + 1], members[i + 1]) end
  mark = members[i + 1]
end
if #members > 0 then redis.call('SET', KEYS[3], mark) end
return done + #members / 2`,
  },
  finish: {
    keys: 1,
    lua: `
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return false end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'failure', ARGV[2]) end
if ARGV[1] == 'approved' and ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'approvedAt', ARGV[3]) end
return redis.call('HGETALL', KEYS[1])`,
  },
  beginResend: {
    keys: undefined,
    lua: `${QUOTAS}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local now = tonumber(ARGV[1])
if redis.call('HGET', KEYS[1], 'status') == 'pending' and now >= tonumber(redis.call('HGET', KEYS[1], 'expiresAt')) then
  redis.call('HSET', KEYS[1], 'status', 'expired')
end
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return {'not-pending', 0, redis.call('HGETALL', KEYS[1])} end
if tonumber(redis.call('HGET', KEYS[1], 'sends')) >= tonumber(redis.call('HGET', KEYS[1], 'maxSends')) then return {'max-sends', 0, redis.call('HGETALL', KEYS[1])} end
local wait = tonumber(redis.call('HGET', KEYS[1], 'lastSentAt')) + tonumber(redis.call('HGET', KEYS[1], 'cooldown')) - now
if wait > 0 then return {'cooldown', wait, redis.call('HGETALL', KEYS[1])} end
local refused = quotas(2, 4, now)
if refused then return {'quota', refused[2], redis.call('HGETALL', KEYS[1]), refused[1]} end
redis.call('HINCRBY', KEYS[1], 'sends', 1)
redis.call('HSET', KEYS[1], 'lastSentAt', ARGV[1], 'code', ARGV[2], 'delivery', ARGV[3], 'deliveryAt', ARGV[1])
return {'ok', 0, redis.call('HGETALL', KEYS[1])}`,
  },
  setDelivery: {
    keys: 1,
    lua: `${DELIVERY}
return delivery(KEYS[1], ARGV[1], ARGV[2], 0)`,
  },
  recordSent: {
    // KEYS[1] the verification, KEYS[2] the message's index key; ARGV: the delivery, its time,
    // the verification's reference and the index's time to live.
    keys: 2,
    lua: `${DELIVERY}
delivery(KEYS[1], ARGV[1], ARGV[2], 1)
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1`,
  },
  fraudCount: {
    // KEYS: pairs of a fraud-guard counter (a hash of s:BUCKET and a:BUCKET counts) and its block.
    // ARGV: now, the current bucket, the window, minSample, minConversion, blockMs, and the column
    // counted (s for a start, a for an approval). After a start, a counter not blocked whose
    // conversion over the window fell is blocked; it answers {index, until, newly} per block.
    // ARGV[8] '' or 'true'/'false' (Enforce): then the last three KEYS are an outbox (see OUTBOX)
    // that gets each block made, and ARGV[9..] the counters' names.
    keys: undefined,
    lua: `${OUTBOX}
local now, bucket, win = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local minSample, minConversion, blockMs, col = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local out = {}
local pairsEnd = #KEYS
if ARGV[8] ~= '' then pairsEnd = #KEYS - 3 end
for i = 1, pairsEnd, 2 do
  local counts, block = KEYS[i], KEYS[i + 1]
  redis.call('HINCRBY', counts, col .. ':' .. ARGV[2], 1)
  redis.call('PEXPIRE', counts, 2 * win)
  if col == 's' then
    local held = redis.call('GET', block)
    if held then
      table.insert(out, {tostring((i + 1) / 2), held, '0'})
    else
      local fields = redis.call('HGETALL', counts)
      local starts, approved = 0, 0
      for j = 1, #fields, 2 do
        local name = fields[j]
        local b = tonumber(string.sub(name, 3))
        if b > bucket - win then
          -- Starts of the current bucket are not judged yet (their codes may still be entered), the approvals all are.
          if string.sub(name, 1, 1) == 's' then
            if b < bucket then starts = starts + tonumber(fields[j + 1]) end
          else
            approved = approved + tonumber(fields[j + 1])
          end
        else
          redis.call('HDEL', counts, name)
        end
      end
      if starts >= minSample and approved < minConversion * starts then
        local untilMs = string.format('%.0f', now + blockMs)
        redis.call('SET', block, untilMs, 'PX', blockMs)
        table.insert(out, {tostring((i + 1) / 2), untilMs, '1'})
        if ARGV[8] ~= '' then
          local name = ARGV[8 + (i + 1) / 2]
          publish(KEYS[#KEYS - 2], KEYS[#KEYS - 1], KEYS[#KEYS], name, ARGV[1],
            '{"kind":"fraud","key":' .. cjson.encode(name) .. ',"until":' .. untilMs .. ',"enforced":' .. ARGV[8] .. '}')
        end
      end
    end
  end
end
return out`,
  },
  outboxClaim: {
    // KEYS: the outbox, its state (see OUTBOX) and its lease; ARGV: the holder, the lease's
    // length, how many entries (0: a renewal), after which seq. false while another holder has
    // the lease, else the entries and their states.
    keys: 3,
    lua: `local held = redis.call('GET', KEYS[3])
if held and held ~= ARGV[1] then return false end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
if tonumber(ARGV[3]) <= 0 then return {{}, {}} end
local entries = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[4], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local seqs, members = {}, {}
for i = 1, #entries, 2 do
  members[#members + 1] = entries[i]
  seqs[#seqs + 1] = entries[i + 1]
end
if #seqs == 0 then return {{}, {}} end
return {members, redis.call('HMGET', KEYS[2], unpack(seqs))}`,
  },
  outboxSettle: {
    // KEYS: the outbox, its state and its lease ('' for the sweep); ARGV: the holder, how many
    // entries are done, their seqs, then the retries as seq, "attempts nextAt" pairs. It answers
    // 0, and settles nothing, when the holder lost the lease.
    keys: 3,
    lua: `if KEYS[3] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
local done = tonumber(ARGV[2])
for i = 3, 2 + done do
  redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[i], ARGV[i])
  redis.call('HDEL', KEYS[2], ARGV[i])
end
for i = 3 + done, #ARGV - 1, 2 do
  if #redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[i], ARGV[i]) > 0 then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
return 1`,
  },
  outboxRelease: {
    keys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`,
  },
  addHistory: {
    keys: 4,
    lua: `${HISTORY}
return history(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptClient = Redis & Record<ScriptName, (...args: (string | number)[]) => Promise<unknown>>;

/** RedisStoreOptions configure the shared store. */
export interface RedisStoreOptions {
  /** Prefix of every key, so that one Redis can hold several deployments. */
  keyPrefix?: string;
  /** Longest wait for one command before the store answers unavailable. */
  commandTimeoutMs?: number;
}

/** Error replies that mean Redis cannot serve for now (their first word). */
const UNAVAILABLE_REPLIES = /^(READONLY|BUSY|OOM|MASTERDOWN|LOADING|CLUSTERDOWN|TRYAGAIN|NOREPLICAS)\b/;

/**
 * RedisStore is the StateStore shared by several verifier replicas: every deciding operation is one
 * Lua script, atomic on the server; expiries are Redis TTLs. While Redis cannot be reached,
 * operations fail at once with StoreUnavailableError (no queueing), and the client reconnects.
 */
export class RedisStore implements StateStore {
  private readonly redis: ScriptClient;
  private readonly p: string;
  /** Whether the histories of an earlier version were added to the set the sweep walks (see discoverHistories). */
  private historiesFound = false;

  constructor(url: string, options: RedisStoreOptions = {}) {
    this.redis = new Redis(url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      // A command whose reply a dropped connection lost may have run: it fails (StoreUnavailableError)
      // instead of being sent again after the reconnect, which would run a script twice (an attempt
      // counted twice, a quota taken twice, an approval answered as a refusal).
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: options.commandTimeoutMs ?? 2000,
      retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 3000),
    }) as ScriptClient;
    this.redis.on('error', () => undefined); // reported through the failing operations
    for (const [name, s] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, { ...(s.keys !== undefined ? { numberOfKeys: s.keys } : {}), lua: s.lua });
    this.p = options.keyPrefix ?? 'smsauth:';
  }

  /** ready resolves once connected, or rejects after timeoutMs (Infinity: waits as long as it takes). */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const connected = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            this.redis.off('ready', connected);
            reject(new StoreUnavailableError('Redis did not become ready'));
          }, timeoutMs)
        : undefined;
      this.redis.once('ready', connected);
    });
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err as { name?: string; message?: string };
      // Replies that say Redis cannot serve now (a replica after a failover, a script running too
      // long, out of memory, loading its data) are an outage too; other replies are defects.
      const busy = e.name === 'ReplyError' && UNAVAILABLE_REPLIES.test(e.message ?? '');
      if (e.name === 'ReplyError' && !busy) throw err;
      throw new StoreUnavailableError(`Redis is unavailable (${busy ? (e.message ?? '').split(' ')[0] : (e.name ?? 'Error')})`, { cause: err });
    }
  }

  private vkey(ns: string, store: string, id: string): string {
    return `${this.p}v:${ns}/${store}/${id}`;
  }

  private lkey(ns: string, store: string, user: string): string {
    return `${this.p}lock:${ns}/${store}/${user}`;
  }

  private ekey(ns: string, store: string, user: string): string {
    return `${this.p}enr:${ns}/${store}/${user}`;
  }

  private messageKey(provider: string, messageId: string): string {
    return `${this.p}msg:${provider}:${messageId}`;
  }

  /** outboxKeys are a store's outbox keys as OUTBOX takes them: entries by seq, their state, the set of outboxes. */
  private outboxKeys(ns: string, store: string): [string, string, string] {
    const base = `${this.p}ob:${ns}/${store}`;
    return [base, `${base}:r`, `${this.p}ob:stores`];
  }

  /** historyKeys are a store's history keys as HISTORY takes them: events by seq, seqs by time, the counter, the set of histories. */
  private historyKeys(ns: string, store: string): [string, string, string, string] {
    const base = `${this.p}h:${ns}/${store}`;
    return [base, `${base}:t`, `${base}:seq`, `${this.p}h:stores`];
  }

  createVerification(
    record: VerificationRecord,
    idempotency: Idempotency | undefined,
    quotas: readonly SendQuota[],
    proof?: ProofSpend,
  ): Promise<CreateResult> {
    return this.call(async (): Promise<CreateResult> => {
      const idemKey = idempotency === undefined ? '' : `${this.p}idem:${record.namespace}/${record.store}/${idempotency.key}`;
      const keep = record.expiresAt - record.createdAt + KEEP_AFTER_EXPIRY_MS;
      const fields = toFields(record);
      const q = this.quotaArgs(quotas, record.createdAt);
      const proofKey = proof === undefined ? '' : this.vkey(record.namespace, record.store, proof.id);
      const [outcome, id, index, retryAfterMs] = (await this.redis.create(
        3 + q.keys.length,
        this.vkey(record.namespace, record.store, record.id),
        idemKey,
        proofKey,
        ...q.keys,
        idempotency?.fingerprint ?? '',
        idempotency?.ttlMs ?? 0,
        record.id,
        keep,
        record.createdAt,
        proof?.maxAgeMs ?? 0,
        record.user,
        record.replaces ?? '',
        fields.length,
        ...fields,
        ...q.args,
      )) as [string, string, number?, number?];
      if (outcome === 'created') return { outcome: 'created', record };
      if (outcome === 'proof') return { outcome: 'proof-refused', reason: id as Exclude<ProofResult, 'ok'> };
      if (outcome === 'limited') return { outcome: 'limited', quota: quotas[index! - 1]!.name, retryAfterMs: retryAfterMs! };
      const earlier = await this.getVerification(record.namespace, record.store, id);
      if (earlier === undefined) throw new Error('an idempotency key outlived its verification');
      return { outcome: outcome as 'replayed' | 'conflict', record: earlier };
    });
  }

  getVerification(namespace: string, store: string, id: string): Promise<VerificationRecord | undefined> {
    return this.call(async () => {
      const h = await this.redis.hgetall(this.vkey(namespace, store, id));
      return Object.keys(h).length === 0 ? undefined : fromHash(h);
    });
  }

  attempt(
    namespace: string,
    store: string,
    id: string,
    now: number,
    candidates: readonly CodeMac[],
    audit?: AttemptAudit,
  ): Promise<AttemptOutcome | undefined> {
    return this.call(async () => {
      const h = this.historyKeys(namespace, store);
      const events = (['approved', 'wrong', 'exhausted', 'locked'] as const).map((k) =>
        audit?.events[k] === undefined ? '' : JSON.stringify(audit.events[k]),
      );
      const retention = audit === undefined ? ['0', '0'] : [now - audit.retention.maxAgeMs, audit.retention.maxEvents];
      const r = (await this.redis.attempt(
        this.vkey(namespace, store, id),
        this.ekey(namespace, store, ''),
        h[0],
        h[1],
        h[2],
        this.lkey(namespace, store, ''),
        h[3],
        ...this.outboxKeys(namespace, store),
        now,
        ...events,
        ...retention,
        LOCKOUT_TTL_MS,
        JSON.stringify(ENROLLMENT_CHANGED),
        JSON.stringify(REPLACEMENT_REFUSED),
        `,${(audit?.publish ?? []).join(',')},`,
        ...candidates.flatMap((c) => [c.keyId, c.mac]),
      )) as [number, number, string[], string, number] | null;
      if (r === null) return undefined;
      const record = fromHash(pairs(r[2]));
      const lockedUntil = Number(r[3]);
      if (lockedUntil > 0) return { counted: false, approved: false, record, lockedUntil };
      return { counted: r[0] === 1, approved: r[1] === 1, record, ...(record.purpose === 'authenticate' ? { lockedNow: r[4] === 1 } : {}) };
    });
  }

  finish(
    namespace: string,
    store: string,
    id: string,
    status: Exclude<VerificationStatus, 'pending'>,
    failure?: { code: string; message: string },
    approvedAt?: number,
  ): Promise<VerificationRecord | undefined> {
    return this.call(async () => {
      const r = (await this.redis.finish(
        this.vkey(namespace, store, id),
        status,
        failure === undefined ? '' : JSON.stringify(failure),
        approvedAt === undefined ? '' : String(approvedAt),
      )) as string[] | null;
      return r === null ? undefined : fromHash(pairs(r));
    });
  }

  beginResend(namespace: string, store: string, id: string, now: number, code: CodeMac, quotas: readonly SendQuota[]): Promise<ResendResult | undefined> {
    return this.call(async () => {
      const q = this.quotaArgs(quotas, now);
      const r = (await this.redis.beginResend(
        1 + q.keys.length,
        this.vkey(namespace, store, id),
        ...q.keys,
        now,
        JSON.stringify(code),
        JSON.stringify({ status: 'sending', updatedAt: now }),
        ...q.args,
      )) as [string, number, string[], number?] | null;
      if (r === null) return undefined;
      const record = fromHash(pairs(r[2]));
      if (r[0] === 'ok') return { ok: true, record };
      if (r[0] === 'cooldown') return { ok: false, reason: 'cooldown', record, retryAfterMs: r[1] };
      if (r[0] === 'quota') return { ok: false, reason: 'quota', record, quota: quotas[r[3]! - 1]!.name, retryAfterMs: r[1] };
      return { ok: false, reason: r[0] as 'not-pending' | 'max-sends', record };
    });
  }

  setDelivery(namespace: string, store: string, id: string, delivery: Delivery): Promise<void> {
    return this.call(async () => {
      await this.redis.setDelivery(this.vkey(namespace, store, id), JSON.stringify(delivery), delivery.updatedAt);
    });
  }

  recordSent(ref: MessageRef, provider: string, delivery: Delivery & { messageId: string }, _now: number, ttlMs: number): Promise<void> {
    return this.call(async () => {
      await this.redis.recordSent(
        this.vkey(ref.namespace, ref.store, ref.id),
        this.messageKey(provider, delivery.messageId),
        JSON.stringify(delivery),
        delivery.updatedAt,
        JSON.stringify(ref),
        Math.max(1, Math.round(ttlMs)),
      );
    });
  }

  findMessage(provider: string, messageId: string, _now: number): Promise<MessageRef | undefined> {
    return this.call(async () => {
      const v = await this.redis.get(this.messageKey(provider, messageId));
      return v === null ? undefined : (JSON.parse(v) as MessageRef);
    });
  }

  getEnrollment(namespace: string, store: string, user: string): Promise<Enrollment | undefined> {
    return this.call(async () => {
      const v = await this.redis.get(this.ekey(namespace, store, user));
      return v === null ? undefined : (JSON.parse(v) as Enrollment);
    });
  }

  enrolledAmong(namespace: string, store: string, users: readonly string[]): Promise<string[]> {
    return this.call(async () => {
      const out: string[] = [];
      for (let i = 0; i < users.length; i += 1000) {
        const chunk = users.slice(i, i + 1000);
        const pipeline = this.redis.pipeline();
        for (const u of chunk) pipeline.exists(this.ekey(namespace, store, u));
        const replies = (await pipeline.exec()) ?? [];
        replies.forEach(([err, n], j) => {
          if (err !== null) throw err;
          if (n === 1) out.push(chunk[j]!);
        });
      }
      return out;
    });
  }

  putEnrollment(namespace: string, store: string, enrollment: Enrollment): Promise<void> {
    return this.call(async () => {
      await this.redis.set(this.ekey(namespace, store, enrollment.user), JSON.stringify(enrollment));
    });
  }

  deleteEnrollment(namespace: string, store: string, user: string, audit?: AuditWrite, proof?: ProofSpend): Promise<DeleteResult> {
    return this.call(async (): Promise<DeleteResult> => {
      const time = audit?.event.time ?? proof?.now ?? 0;
      const [outcome, value] = (await this.redis.deleteEnrollment(
        this.ekey(namespace, store, user),
        ...this.historyKeys(namespace, store),
        proof === undefined ? '' : this.vkey(namespace, store, proof.id),
        ...this.outboxKeys(namespace, store),
        audit === undefined ? '' : JSON.stringify(audit.event),
        user,
        time,
        audit === undefined ? 0 : time - audit.retention.maxAgeMs,
        audit?.retention.maxEvents ?? 0,
        proof?.maxAgeMs ?? 0,
        audit?.publish === true ? '1' : '',
      )) as [string, string?];
      if (outcome === 'none') return { outcome: 'none' };
      if (outcome === 'proof') return { outcome: 'proof-refused', reason: value as Exclude<ProofResult, 'ok'> };
      return { outcome: 'deleted', enrollment: JSON.parse(value!) as Enrollment };
    });
  }

  getLockout(namespace: string, store: string, user: string, now: number): Promise<LockoutState> {
    return this.call(async () => {
      const [failures, until] = await this.redis.hmget(this.lkey(namespace, store, user), 'failures', 'lockedUntil');
      const lockedUntil = Number(until ?? '0');
      if (failures === null || (lockedUntil > 0 && lockedUntil <= now)) return { failures: 0, lockedUntil: null };
      return { failures: Number(failures), lockedUntil: lockedUntil > 0 ? lockedUntil : null };
    });
  }

  clearLockout(namespace: string, store: string, user: string, now: number, audit: AuditWrite): Promise<boolean> {
    return this.call(async () => {
      const event = JSON.stringify({ ...audit.event, result: 'success' });
      return (
        (await this.redis.clearLockout(
          this.lkey(namespace, store, user),
          ...this.historyKeys(namespace, store),
          ...this.outboxKeys(namespace, store),
          now,
          event,
          user,
          now - audit.retention.maxAgeMs,
          audit.retention.maxEvents,
          audit.publish === true ? '1' : '',
        )) === 1
      );
    });
  }

  /** quotaArgs spells quotas as the QUOTAS Lua function reads them: a window's key names its start. */
  private quotaArgs(quotas: readonly SendQuota[], now: number): { keys: string[]; args: (string | number)[] } {
    const keys: string[] = [];
    const args: (string | number)[] = [];
    for (const q of quotas) {
      if (q.kind === 'window') {
        const start = Math.floor(now / q.windowMs) * q.windowMs;
        keys.push(`${this.p}rw:${q.key}:${start}`);
        args.push('w', q.limit, start + q.windowMs - now);
      } else {
        keys.push(`${this.p}rb:${q.key}`);
        args.push('b', q.perSecond, q.burst);
      }
    }
    return { keys, args };
  }

  addHistory(event: Omit<HistoryEvent, 'seq'>, retention: HistoryRetention): Promise<void> {
    return this.call(async () => {
      await this.redis.addHistory(
        ...this.historyKeys(event.namespace, event.store),
        JSON.stringify(event),
        event.user,
        event.time,
        event.time - retention.maxAgeMs,
        retention.maxEvents,
      );
    });
  }

  listHistory(namespace: string, store: string, query: HistoryQuery): Promise<HistoryPage> {
    return this.call(async () => {
      const [base] = this.historyKeys(namespace, store);
      const events: HistoryEvent[] = [];
      let max = query.before === undefined ? '+inf' : `(${query.before}`;
      let scanned = 0;
      // Newest first, from the user's index when a user is asked for (no scan of the store's), in
      // batches, until the page is full or HISTORY_SCAN events were examined.
      for (;;) {
        const batch =
          query.user === undefined
            ? (await this.redis.zrevrangebyscore(base, max, '-inf', 'LIMIT', 0, HISTORY_BATCH)).map((m) => JSON.parse(m) as HistoryEvent)
            : await this.userEvents(base, query.user, max);
        for (const e of batch) {
          scanned++;
          max = `(${e.seq}`;
          if (e.user !== undefined && matches(e, query)) {
            events.push(e);
            if (events.length === query.limit) return { events, next: e.seq };
          }
        }
        if (batch.length < HISTORY_BATCH) return { events, next: null };
        if (scanned >= HISTORY_SCAN) return { events, next: Number(max.slice(1)) };
      }
    });
  }

  /**
   * userEvents reads a batch of a user's events, newest first, below max (a ZRANGEBYSCORE bound):
   * one per index entry, an entry whose event was trimmed meanwhile as its bare seq.
   */
  private async userEvents(base: string, user: string, max: string): Promise<(HistoryEvent | { seq: number; user: undefined })[]> {
    const seqs = await this.redis.zrevrangebyscore(`${base}:u:${user}`, max, '-inf', 'LIMIT', 0, HISTORY_BATCH);
    if (seqs.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const seq of seqs) pipeline.zrangebyscore(base, seq, seq);
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, members], i) => {
      if (err !== null) throw err;
      const member = (members as string[])[0];
      return member === undefined ? { seq: Number(seqs[i]), user: undefined } : (JSON.parse(member) as HistoryEvent);
    });
  }

  async fraudBlocks(keys: readonly string[], now: number): Promise<FraudBlock[]> {
    if (keys.length === 0) return [];
    const held = await this.call(() => this.redis.mget(...keys.map((k) => `${this.p}${k}:block`)));
    return keys
      .map((key, i) => ({ key, until: Number(held[i] ?? 0), newly: false }))
      .filter((b) => b.until > now)
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  fraudStart(keys: readonly string[], now: number, policy: FraudPolicy, publish?: FraudPublish): Promise<FraudBlock[]> {
    return this.fraudCount(keys, now, policy, 's', publish);
  }

  async fraudApproved(keys: readonly string[], now: number, policy: FraudPolicy): Promise<void> {
    await this.fraudCount(keys, now, policy, 'a');
  }

  private async fraudCount(keys: readonly string[], now: number, policy: FraudPolicy, column: 's' | 'a', publish?: FraudPublish): Promise<FraudBlock[]> {
    if (keys.length === 0) return [];
    const redisKeys = keys.flatMap((k) => [`${this.p}${k}`, `${this.p}${k}:block`]);
    const args: (string | number)[] = [now, bucketOf(now, policy.windowMs), policy.windowMs, policy.minSample, policy.minConversion, policy.blockMs, column];
    if (publish === undefined) args.push('');
    else {
      redisKeys.push(...this.outboxKeys(publish.namespace, publish.store));
      args.push(String(publish.enforced), ...keys);
    }
    const answered = (await this.call(() => this.redis.fraudCount(redisKeys.length, ...redisKeys, ...args))) as [string, string, string][];
    return answered
      .map(([index, until, newly]) => ({ key: keys[Number(index) - 1]!, until: Number(until), newly: newly === '1' }))
      .filter((b) => b.until > now || b.newly)
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  async sweep(now: number, history: HistoryRetention): Promise<void> {
    // Keys expire by themselves; each store's history is trimmed by age and count, and indexed
    // by user where an earlier version left it unindexed, in bounded steps; outbox entries past
    // their keep go from the oldest.
    await this.call(async () => {
      const [, , , stores] = this.historyKeys('', '');
      await this.discoverHistories(stores);
      for (const base of await this.redis.smembers(stores)) {
        while (((await this.redis.sweepHistory(base, `${base}:t`, `${base}:ix`, now - history.maxAgeMs, history.maxEvents)) as number) > 0);
      }
      const [, , outboxes] = this.outboxKeys('', '');
      for (const ob of await this.redis.smembers(outboxes)) {
        for (;;) {
          const head = await this.redis.zrange(ob, '0', '99');
          const old = head.map((m) => JSON.parse(m) as Omit<OutboxEntry, 'namespace' | 'store'>).filter((e) => e.time < now - OUTBOX_KEEP_MS);
          if (old.length > 0) await this.redis.outboxSettle(ob, `${ob}:r`, '', '', old.length, ...old.map((e) => e.seq));
          if (old.length < 100) break;
        }
      }
    });
  }

  outboxClaim(
    namespace: string,
    store: string,
    holder: string,
    _now: number,
    leaseMs: number,
    limit: number,
    afterSeq = 0,
  ): Promise<OutboxEntry[] | undefined> {
    // The lease runs on Redis' clock (PX), as every replica's does.
    return this.call(async () => {
      const [ob, state] = this.outboxKeys(namespace, store);
      const r = (await this.redis.outboxClaim(ob, state, `${ob}:lease`, holder, leaseMs, limit, afterSeq)) as [string[], (string | null)[]] | null;
      if (r === null) return undefined;
      return r[0].map((m, i) => {
        const e = JSON.parse(m) as Pick<OutboxEntry, 'seq' | 'key' | 'time' | 'body'>;
        const [attempts, nextAt] = (r[1][i] ?? '0 0').split(' ').map(Number) as [number, number];
        return { ...e, namespace, store, attempts, nextAt };
      });
    });
  }

  outboxSettle(namespace: string, store: string, holder: string, done: readonly number[], retry: readonly OutboxRetry[]): Promise<boolean> {
    return this.call(async () => {
      const [ob, state] = this.outboxKeys(namespace, store);
      const args = [holder, done.length, ...done, ...retry.flatMap((r) => [r.seq, `${r.attempts} ${r.nextAt}`])];
      return (await this.redis.outboxSettle(ob, state, `${ob}:lease`, ...args)) === 1;
    });
  }

  putAlias(namespace: string, store: string, alias: string, id: string, _now: number, ttlMs: number): Promise<void> {
    return this.call(async () => {
      await this.redis.set(`${this.p}al:${namespace}/${store}/${alias}`, id, 'PX', Math.max(1, Math.ceil(ttlMs)));
    });
  }

  getAlias(namespace: string, store: string, alias: string): Promise<string | undefined> {
    return this.call(async () => (await this.redis.get(`${this.p}al:${namespace}/${store}/${alias}`)) ?? undefined);
  }

  outboxRelease(namespace: string, store: string, holder: string): Promise<void> {
    return this.call(async () => {
      await this.redis.outboxRelease(`${this.outboxKeys(namespace, store)[0]}:lease`, holder);
    });
  }

  /**
   * discoverHistories adds the histories an earlier version wrote (it kept no set of them) to the
   * set the sweep walks, once per Redis (a flag key says it is done).
   */
  private async discoverHistories(stores: string): Promise<void> {
    if (this.historiesFound) return;
    const flag = `${this.p}h:found`;
    if ((await this.redis.exists(flag)) === 0) {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${globEscape(this.p)}h:*`, 'COUNT', 500);
        cursor = next;
        // A store's events are h:NS/STORE (names have no colon); :t, :seq, :ix, :u:… and the set are not.
        const bases = keys.filter((k) => /^[^:]+\/[^:]+$/.test(k.slice(`${this.p}h:`.length)));
        if (bases.length > 0) await this.redis.sadd(stores, ...bases);
      } while (cursor !== '0');
      await this.redis.set(flag, '1');
    }
    this.historiesFound = true;
  }

  ping(): Promise<void> {
    return this.call(async () => {
      await this.redis.ping();
    });
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

/** matches applies a history query's filters to an event (the user's index already selected the user). */
function matches(e: HistoryEvent, q: HistoryQuery): boolean {
  return (
    (q.type === undefined || e.type === q.type) &&
    (q.actor === undefined || (e.actor ?? 'user') === q.actor) &&
    (q.since === undefined || e.time >= q.since) &&
    (q.until === undefined || e.time < q.until)
  );
}

/** globEscape escapes a key prefix for SCAN MATCH. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function toFields(r: VerificationRecord): string[] {
  const {
    status,
    attempts,
    sends,
    lastSentAt,
    code,
    delivery,
    failure,
    expiresAt,
    maxAttempts,
    maxSends,
    resendCooldownMs,
    approvedAt: _a,
    proofUsed: _p,
    ...rest
  } = r;
  const fields: Record<string, string> = {
    rec: JSON.stringify({ ...rest, expiresAt, maxAttempts, maxSends, resendCooldownMs }),
    status,
    attempts: String(attempts),
    sends: String(sends),
    lastSentAt: String(lastSentAt),
    code: JSON.stringify(code),
    delivery: JSON.stringify(delivery),
    deliveryAt: String(delivery.updatedAt),
    expiresAt: String(expiresAt),
    maxAttempts: String(maxAttempts),
    maxSends: String(maxSends),
    cooldown: String(resendCooldownMs),
  };
  if (failure !== undefined) fields.failure = JSON.stringify(failure);
  return Object.entries(fields).flat();
}

function fromHash(h: Record<string, string>): VerificationRecord {
  const rec = JSON.parse(h.rec!) as Omit<VerificationRecord, 'status' | 'attempts' | 'sends' | 'lastSentAt' | 'code' | 'delivery' | 'failure'>;
  return {
    ...rec,
    status: h.status as VerificationStatus,
    attempts: Number(h.attempts),
    sends: Number(h.sends),
    lastSentAt: Number(h.lastSentAt),
    code: JSON.parse(h.code!) as CodeMac,
    delivery: JSON.parse(h.delivery!) as Delivery,
    ...(h.failure !== undefined ? { failure: JSON.parse(h.failure) as { code: string; message: string } } : {}),
    ...(h.approvedAt !== undefined ? { approvedAt: Number(h.approvedAt) } : {}),
    ...(h.proofUsed !== undefined ? { proofUsed: true as const } : {}),
  };
}

function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}
