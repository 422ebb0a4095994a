import { Cluster, Redis, type ChainableCommander } from 'ioredis';
import { hashTag, keyTag, parseRedisTarget } from '../core/redis-target.ts';
import { bucketOf, type FraudBlock, type FraudPolicy } from '../core/fraud-guard.ts';
import type {
  AttemptAudit,
  AttemptOutcome,
  AuditWrite,
  CreateResult,
  DeleteResult,
  EnrollmentExpected,
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
import {
  ENROLLMENT_CHANGED,
  isEnrollmentAsExpected,
  OUTBOX_KEEP_MS,
  REPLACEMENT_REFUSED,
  StoreUnavailableError,
  resendRefusal,
} from '../verifier/state-store.ts';
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

/** The failures an attempt's script may end a verification with, as it stores them (written once, not per check). */
const ENROLLMENT_CHANGED_JSON = JSON.stringify(ENROLLMENT_CHANGED);
const REPLACEMENT_REFUSED_JSON = JSON.stringify(REPLACEMENT_REFUSED);

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

// REFUND gives back what QUOTAS took from KEYS[first..] (the same ARGV layout): a window's count
// less one, a bucket's token back (up to its burst). A Redis Cluster takes quotas of other hash
// slots (an account's rate, shared by stores) in their own step, and gives them back when the
// store's own step refuses.
const REFUND = `
local function refund(first, arg)
  for i = first, #KEYS do
    local j = arg + (i - first) * 3
    if ARGV[j] == 'w' then
      if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
    else
      local t = tonumber(redis.call('HGET', KEYS[i], 'tokens') or '')
      if t ~= nil then redis.call('HSET', KEYS[i], 'tokens', string.format('%.17g', math.min(tonumber(ARGV[j + 2]), t + 1))) end
    end
  end
end
`;

// RECORD reads and writes a verification: one string of JSON (the record as VerificationRecord
// types it), which keeps a million pending verifications in far less memory than a hash of
// fields. save keeps the key's time to live and answers the JSON written.
const RECORD = `
local function load(key)
  local v = redis.call('GET', key)
  if not v then return nil end
  return cjson.decode(v)
end
local function save(key, rec)
  local v = cjson.encode(rec)
  redis.call('SET', key, v, 'KEEPTTL')
  return v
end
`;

// HISTORY appends an event (JSON, without its seq) of a user to a store's history: keys base
// (events by seq), base:t (seqs by time), base:seq (the counter) and the user's index (base:u:<user>,
// the user's seqs, so that a user's history is read without scanning the store's); it trims the
// store's by age (events before minTime) and by count (the newest maxEvents stay). A script may
// touch only the keys it is given, so the trimmed events' users are collected in \`unindexed\`
// ("user seq" strings), for the caller to take them out of those users' indexes.
const HISTORY = `
local unindexed = {}
local function unindex(members)
  for _, m in ipairs(members) do
    local ok, e = pcall(cjson.decode, m)
    if ok and type(e) == 'table' and e.user then unindexed[#unindexed + 1] = e.user .. ' ' .. e.seq end
  end
end
-- trimCount removes the oldest by seq beyond maxEvents (at most 1000 a call: a lowered bound is
-- reached over several calls), and the same seqs from the time index.
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
  unindex(members)
  redis.call('ZREMRANGEBYRANK', base, 0, excess - 1)
  return excess
end
local function trimOld(base, byTime, minTime, max)
  local old = redis.call('ZRANGEBYSCORE', byTime, '-inf', '(' .. minTime, 'LIMIT', 0, max)
  for _, s in ipairs(old) do
    unindex(redis.call('ZRANGEBYSCORE', base, s, s))
    redis.call('ZREMRANGEBYSCORE', base, s, s)
    redis.call('ZREM', byTime, s)
  end
  return #old
end
local function history(base, byTime, counter, userIndex, event, time, minTime, maxEvents)
  local seq = redis.call('INCR', counter)
  local stored = '{"seq":' .. seq .. ',' .. string.sub(event, 2)
  redis.call('ZADD', base, seq, stored)
  redis.call('ZADD', byTime, time, seq)
  redis.call('ZADD', userIndex, seq, seq)
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

// OUTBOX puts an entry (see OutboxEntry) in a store's outbox: keys ob (entries by seq) and ob:r
// (the seq counter, #seq, and each failed entry's "attempts nextAt"); key orders the entry, time is
// when the change happened, body its JSON (OutboxBody).
const OUTBOX = `
local function publish(ob, state, key, time, body)
  local s = redis.call('HINCRBY', state, '#seq', 1)
  redis.call('ZADD', ob, s, '{"seq":' .. s .. ',"key":' .. cjson.encode(key) .. ',"time":' .. time .. ',"body":' .. body .. '}')
end
-- publishHistory puts a recorded history event (as history() stored it) in the outbox.
local function publishHistory(ob, state, user, time, stored, extra)
  publish(ob, state, user, time, '{"kind":"history","event":' .. stored .. extra .. '}')
end
`;

// PROOF restates proofRefusal: the authentication at key, spent as proof for user's number at
// now, within maxAge; false when it may be spent, else why not.
const PROOF = `
local function proofRefusal(key, user, number, now, maxAge)
  local p = load(key)
  if p == nil or p.purpose ~= 'authenticate' then return 'not-found' end
  if p.user ~= user then return 'other-user' end
  if p.status ~= 'approved' or not p.approvedAt then return 'not-approved' end
  if p.proofUsed then return 'used' end
  if tonumber(now) - p.approvedAt > tonumber(maxAge) then return 'stale' end
  if p.to ~= number then return 'other-number' end
  return false
end
`;

// DELIVERY records a verification's delivery news (JSON) in rec unless newer news is already
// there, and answers whether it did. With sent = 1 it is the send's own record, which names its
// message; otherwise news of a message (a receipt) applies only while that message is the one
// recorded, and never undoes its final status.
const DELIVERY = `
local function delivery(rec, news, sent)
  local new = cjson.decode(news)
  local old = rec.delivery
  if tonumber(old.updatedAt) > tonumber(new.updatedAt) then return false end
  if sent ~= 1 then
    if new.messageId and old.messageId ~= new.messageId then return false end
    local final = {delivered = true, undelivered = true, failed = true}
    if old.messageId == new.messageId and final[old.status] and not final[new.status] then return false end
  end
  rec.delivery = new
  return true
end
`;

// Every script takes times from the caller and sets relative expiries (PEXPIRE), so that a
// replica's clock, or a test's, never makes a key vanish early. Every key a script touches is one
// of its KEYS (a Redis Cluster routes a script by them, and they share one hash slot: a store's
// keys are tagged {ns/store}); where a key is optional, the script's first key stands for "none".
// Scripts with a variable number of keys (the quotas) take the count as their first argument.
const SCRIPTS = {
  create: {
    // KEYS[1] the verification, KEYS[2] its Idempotency-Key, KEYS[3] the proof a replacement
    // spends, KEYS[4] the user's enrollment when it must be as expected, KEYS[5..] its quotas.
    // ARGV: fingerprint, key ttl, id, keep, now, the proof's longest age, the user, the number
    // replaced, the record (JSON), the enrollment's expected number, '1' when none will do too,
    // then the quotas' arguments. The proof rule restates proofRefusal.
    keys: undefined,
    lua: `${QUOTAS}${RECORD}${PROOF}
if KEYS[4] ~= KEYS[1] then
  local enrollment = redis.call('GET', KEYS[4])
  if not enrollment and ARGV[11] ~= '1' or enrollment and cjson.decode(enrollment).to ~= ARGV[10] then
    return {'enrollment', enrollment or ''}
  end
end
local existing = KEYS[2] ~= KEYS[1] and redis.call('GET', KEYS[2])
if existing then
  local sep = string.find(existing, ' ', 1, true)
  local fp = string.sub(existing, 1, sep - 1)
  return {fp == ARGV[1] and 'replayed' or 'conflict', string.sub(existing, sep + 1)}
end
if KEYS[3] ~= KEYS[1] then
  local refusal = proofRefusal(KEYS[3], ARGV[7], ARGV[8], ARGV[5], ARGV[6])
  if refusal then return {'proof', refusal} end
end
local refused = quotas(5, 12, tonumber(ARGV[5]))
if refused then return {'limited', '', refused[1], refused[2]} end
if KEYS[3] ~= KEYS[1] then
  local p = load(KEYS[3])
  p.proofUsed = true
  save(KEYS[3], p)
end
if KEYS[2] ~= KEYS[1] then redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[3], 'PX', ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[9], 'PX', ARGV[4])
return {'created', ARGV[3]}`,
  },
  takeQuotas: {
    // KEYS: quotas of one hash slot; ARGV: now, then their arguments (see QUOTAS).
    keys: undefined,
    lua: `${QUOTAS}
return quotas(1, 2, tonumber(ARGV[1]))`,
  },
  refundQuotas: {
    // KEYS: quotas of one hash slot; ARGV: their arguments (see QUOTAS).
    keys: undefined,
    lua: `${REFUND}
refund(1, 1)
return 1`,
  },
  attempt: {
    // KEYS: the verification, the user's enrollment, the store's history keys (base, base:t,
    // base:seq) and the user's index in it (see HISTORY), the user's lockout, the store's outbox
    // (ob, ob:r; see OUTBOX). ARGV[1] is now; ARGV[2..4] the audit events for an approval, a wrong
    // code with attempts left and a wrong code on the last attempt, ARGV[5] for a lockout ('' for
    // none); ARGV[6..7] the history's minTime and maxEvents; ARGV[8] the lockout key's time to
    // live; ARGV[9] the failure that ends an authentication whose number is no longer enrolled,
    // ARGV[10] the one that ends an enrollment that may not replace another number; ARGV[11] the
    // outcomes published (",approved,locked," …); ARGV[12] the verification's user (whose keys
    // these are); then keyId and MAC pairs: the candidates. MACs are of codes the caller cannot
    // choose bytes of, so comparing them with == leaks nothing a guess could use. It answers
    // {counted, approved, the record, lockedUntil, lockedNow, the unindexed history}.
    keys: 9,
    lua: `${RECORD}${HISTORY}${OUTBOX}
local rec = load(KEYS[1])
if rec == nil then return false end
if rec.user ~= ARGV[12] then return redis.error_reply('ERR the verification is not the named user\\'s') end
local now = tonumber(ARGV[1])
local counted, approved, event, outcome, lockedUntil, lockedNow, changed = 0, 0, '', '', 0, 0, false
if rec.status == 'pending' then
  local auth = rec.purpose == 'authenticate'
  local lockKey = KEYS[7]
  local failures = 0
  if auth then
    failures = tonumber(redis.call('HGET', lockKey, 'failures') or '0')
    local untilMs = tonumber(redis.call('HGET', lockKey, 'lockedUntil') or '0')
    if untilMs > now then lockedUntil = untilMs elseif untilMs > 0 then failures = 0 end
  end
  if lockedUntil > 0 then
    -- locked out: refused, uncounted
  elseif now >= rec.expiresAt then
    rec.status, changed = 'expired', true
  else
    local max = rec.maxAttempts
    for i = 13, #ARGV - 1, 2 do
      if ARGV[i] == rec.code.keyId and ARGV[i + 1] == rec.code.mac then approved = 1 end
    end
    local current = nil
    if rec.attempts < max and approved == 1 and rec.purpose ~= 'helpdesk' then
      local e = redis.call('GET', KEYS[2])
      if e then current = cjson.decode(e) end
    end
    if rec.attempts < max and approved == 1 and auth and rec.numberFrom ~= 'directory' and (current == nil or current.to ~= rec.to) then
      -- the number this code went to is no longer the user's factor: the verification ends, uncounted
      approved = 0
      rec.status, rec.failure, changed = 'canceled', cjson.decode(ARGV[9]), true
    elseif rec.attempts < max and approved == 1 and rec.purpose == 'enroll' and current ~= nil and current.to ~= rec.to and rec.replaces ~= '*' and rec.replaces ~= current.to then
      -- the user has another number than the one this enrollment may replace (replacementRefused)
      approved = 0
      rec.status, rec.failure, changed = 'canceled', cjson.decode(ARGV[10]), true
    elseif rec.attempts < max then
      rec.attempts = rec.attempts + 1
      counted, changed = 1, true
      if approved == 1 then
        rec.status, rec.approvedAt = 'approved', now
        event, outcome = ARGV[2], 'approved'
        if auth then
          redis.call('DEL', lockKey)
        elseif rec.purpose == 'enroll' then
          local masked = rec.maskedTo and (',"masked":' .. cjson.encode(rec.maskedTo)) or ''
          redis.call('SET', KEYS[2], '{"user":' .. cjson.encode(rec.user) .. ',"to":' .. cjson.encode(rec.to) .. ',"enrolledAt":' .. ARGV[1] .. ',"verificationId":' .. cjson.encode(rec.id) .. masked .. '}')
          if event ~= '' then event = withNumbers(event, current and maskOf(current.masked) or 'null', maskOf(rec.maskedTo)) end
        end
      else
        if rec.attempts >= max then
          rec.status = 'max_attempts_reached'
          event, outcome = ARGV[4], 'exhausted'
        else
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
local json = changed and save(KEYS[1], rec) or cjson.encode(rec)
if event ~= '' then
  local _, stored = history(KEYS[3], KEYS[4], KEYS[5], KEYS[6], event, ARGV[1], ARGV[6], ARGV[7])
  if string.find(ARGV[11], ',' .. outcome .. ',', 1, true) then publishHistory(KEYS[8], KEYS[9], rec.user, ARGV[1], stored, ',"outcome":"' .. outcome .. '"') end
end
if lockedNow == 1 and ARGV[5] ~= '' then
  local _, stored = history(KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[5], ARGV[1], ARGV[6], ARGV[7])
  if string.find(ARGV[11], ',locked,', 1, true) then
    publishHistory(KEYS[8], KEYS[9], rec.user, ARGV[1], stored, ',"outcome":"locked","lockedUntil":' .. string.format('%d', lockedUntil))
  end
end
-- A lockout this attempt started is not one that refused it.
if lockedNow == 1 then lockedUntil = 0 end
return {counted, approved, json, string.format('%d', lockedUntil), lockedNow, unindexed}`,
  },
  deleteEnrollment: {
    // KEYS: the enrollment, the history keys and the user's index (see HISTORY), the proof it
    // spends (KEYS[1] for none), the outbox (see OUTBOX). ARGV: the event ('' for none), the user,
    // its time, minTime, maxEvents, the proof's longest age, and '1' to publish the event. It
    // answers {'deleted', enrollment, unindexed}, {'none'} or {'proof', why}.
    keys: 8,
    lua: `${RECORD}${HISTORY}${OUTBOX}${PROOF}
local e = redis.call('GET', KEYS[1])
if not e then return {'none'} end
if KEYS[6] ~= KEYS[1] then
  local refusal = proofRefusal(KEYS[6], ARGV[2], cjson.decode(e).to, ARGV[3], ARGV[6])
  if refusal then return {'proof', refusal} end
  local p = load(KEYS[6])
  p.proofUsed = true
  save(KEYS[6], p)
end
redis.call('DEL', KEYS[1])
if ARGV[1] ~= '' then
  local _, stored = history(KEYS[2], KEYS[3], KEYS[4], KEYS[5], withNumbers(ARGV[1], maskOf(cjson.decode(e).masked), 'null'), ARGV[3], ARGV[4], ARGV[5])
  if ARGV[7] == '1' then publishHistory(KEYS[7], KEYS[8], ARGV[2], ARGV[3], stored, '') end
end
return {'deleted', e, unindexed}`,
  },
  clearLockout: {
    // KEYS: the lockout, the history keys and the user's index (see HISTORY), the outbox (see
    // OUTBOX); ARGV: now, the event, the user, minTime, maxEvents, '1' to publish the event. It
    // answers {whether a lockout was on, unindexed}.
    keys: 7,
    lua: `${HISTORY}${OUTBOX}
local untilMs = tonumber(redis.call('HGET', KEYS[1], 'lockedUntil') or '0')
redis.call('DEL', KEYS[1])
local _, stored = history(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[2], ARGV[1], ARGV[4], ARGV[5])
if ARGV[6] == '1' then publishHistory(KEYS[6], KEYS[7], ARGV[3], ARGV[1], stored, '') end
return {untilMs > tonumber(ARGV[1]) and 1 or 0, unindexed}`,
  },
  sweepHistory: {
    // KEYS[1..2] a store's events and time index; ARGV: minTime, maxEvents. One bounded step: at
    // most 1000 events past their age and 1000 beyond the count. It answers {how many went (0:
    // the store is done), unindexed}.
    keys: 2,
    lua: `${HISTORY}
local done = trimOld(KEYS[1], KEYS[2], ARGV[1], 1000) + trimCount(KEYS[1], KEYS[2], ARGV[2])
return {done, unindexed}`,
  },
  finish: {
    // KEYS[1] the verification, with an audit KEYS[2..7] the history keys and the user's index
    // (see HISTORY) and the outbox (see OUTBOX); ARGV: the status, the failure (JSON, '' for
    // none), approvedAt ('' for none), with an audit the event, its time, minTime, maxEvents, '1'
    // to publish it, the user. It answers {the record, or false when it was not pending; unindexed}.
    keys: undefined,
    lua: `${RECORD}${HISTORY}${OUTBOX}
local rec = load(KEYS[1])
if rec == nil or rec.status ~= 'pending' then return {false, {}} end
rec.status = ARGV[1]
if ARGV[2] ~= '' then rec.failure = cjson.decode(ARGV[2]) end
if ARGV[1] == 'approved' and ARGV[3] ~= '' then rec.approvedAt = tonumber(ARGV[3]) end
local saved = save(KEYS[1], rec)
if #KEYS > 1 then
  local _, stored = history(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
  if ARGV[8] == '1' then publishHistory(KEYS[6], KEYS[7], ARGV[9], ARGV[5], stored, '') end
end
return {saved, unindexed}`,
  },
  beginResend: {
    // KEYS[1] the verification, KEYS[2..] the quotas; ARGV: now, the new code (JSON), the
    // delivery (JSON), then the quotas' arguments.
    keys: undefined,
    lua: `${QUOTAS}${RECORD}
local rec = load(KEYS[1])
if rec == nil then return false end
local now = tonumber(ARGV[1])
if rec.status == 'pending' and now >= rec.expiresAt then
  rec.status = 'expired'
  return {'not-pending', 0, save(KEYS[1], rec)}
end
if rec.status ~= 'pending' then return {'not-pending', 0, cjson.encode(rec)} end
if rec.sends >= rec.maxSends then return {'max-sends', 0, cjson.encode(rec)} end
local wait = rec.lastSentAt + rec.resendCooldownMs - now
if wait > 0 then return {'cooldown', wait, cjson.encode(rec)} end
local refused = quotas(2, 4, now)
if refused then return {'quota', refused[2], cjson.encode(rec), refused[1]} end
rec.sends, rec.lastSentAt, rec.code, rec.delivery = rec.sends + 1, now, cjson.decode(ARGV[2]), cjson.decode(ARGV[3])
return {'ok', 0, save(KEYS[1], rec)}`,
  },
  setDelivery: {
    // KEYS[1] the verification; ARGV: the delivery news (JSON), '1' when it is the send's own record.
    keys: 1,
    lua: `${RECORD}${DELIVERY}
local rec = load(KEYS[1])
if rec == nil or not delivery(rec, ARGV[1], tonumber(ARGV[2])) then return 0 end
save(KEYS[1], rec)
return 1`,
  },
  recordSent: {
    // One Redis only (the two keys are in different slots of a cluster): KEYS[1] the verification,
    // KEYS[2] the message's index; ARGV: the delivery (JSON), the verification's reference (JSON),
    // the index's time to live.
    keys: 2,
    lua: `${RECORD}${DELIVERY}
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local rec = load(KEYS[1])
if rec ~= nil and delivery(rec, ARGV[1], 1) then save(KEYS[1], rec) end
return 1`,
  },
  fraudCount: {
    // KEYS: pairs of a fraud-guard counter (a hash of s:BUCKET and a:BUCKET counts) and its block.
    // ARGV: now, the current bucket, the window, minSample, minConversion, blockMs, and the column
    // counted (s for a start, a for an approval). After a start, a counter not blocked whose
    // conversion over the window fell is blocked; it answers {index, until, newly} per block.
    // ARGV[8] '' or 'true'/'false' (Enforce): then the last two KEYS are an outbox (see OUTBOX)
    // that gets each block made, and ARGV[9..] the counters' names.
    keys: undefined,
    lua: `${OUTBOX}
local now, bucket, win = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local minSample, minConversion, blockMs, col = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local out = {}
local pairsEnd = #KEYS
if ARGV[8] ~= '' then pairsEnd = #KEYS - 2 end
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
          publish(KEYS[#KEYS - 1], KEYS[#KEYS], name, ARGV[1],
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
    // KEYS: the outbox, its state and its lease; ARGV: the holder ('' for the sweep, which holds
    // no lease), how many entries are done, their seqs, then the retries as seq, "attempts
    // nextAt" pairs. It answers 0, and settles nothing, when the holder lost the lease.
    keys: 3,
    lua: `if ARGV[1] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
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
    // KEYS: the history keys and the user's index (see HISTORY); ARGV: the event, its time,
    // minTime, maxEvents. It answers the unindexed history.
    keys: 4,
    lua: `${HISTORY}
history(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return unindexed`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptClient = (Redis | Cluster) & Record<ScriptName | 'batch', (...args: (string | number)[]) => Promise<unknown>>;
type ScriptPipeline = ChainableCommander & Record<ScriptName, (...args: (string | number)[]) => ChainableCommander>;

/**
 * The most runs sent as one call. It bounds what one call may hold Redis for (every other client
 * waits meanwhile: a run trims at most 1,000 history events) and what one lost reply fails. Redis
 * also judges its memory once per call: under `maxmemory` with `noeviction`, once a run of a call
 * wrote, the runs after it in the call write too where each alone would have been refused (OOM),
 * so a call may go past the limit by what at most this many runs write.
 */
const MAX_RUNS_PER_CALL = 16;

/**
 * batchLua is a script that runs several of SCRIPTS in turn, in one call. ARGV[1] says how many
 * runs; then, for each, the script's name, how many of KEYS and how many of the arguments after
 * these headers are its own; the runs' keys and arguments follow in order. It answers an array of
 * the runs' replies. A run that fails (an error reply, or an error raised) has its error there,
 * and the others run as if each were alone: an error undoes nothing of another run, as with one
 * call each (nor, as then, of its own writes before it).
 */
function batchLua(): string {
  const scripts = Object.entries(SCRIPTS).map(([name, s]) => `scripts['${name}'] = function(KEYS, ARGV)\n${s.lua}\nend`);
  return `local scripts = {}
${scripts.join('\n')}
local out, runs = {}, tonumber(ARGV[1])
local k, a = 0, 1 + 3 * runs
for n = 1, runs do
  local run = scripts[ARGV[3 * n - 1]]
  local nk, na = tonumber(ARGV[3 * n]), tonumber(ARGV[3 * n + 1])
  local keys, args = {}, {}
  for i = 1, nk do keys[i] = KEYS[k + i] end
  for i = 1, na do args[i] = ARGV[a + i] end
  k, a = k + nk, a + na
  local ok, res = pcall(run, keys, args)
  if not ok then
    if type(res) == 'table' and res.err then out[n] = res else out[n] = redis.error_reply(tostring(res)) end
  elseif res == nil then
    out[n] = false
  else
    out[n] = res
  end
end
return out`;
}

/** A script's run asked of a Redis that is not a cluster, sent at the end of the turn (see RedisStore.run). */
interface QueuedRun {
  name: ScriptName;
  /** As the script's direct call takes them: its keys first (after their count, for a script whose number of keys varies). */
  args: (string | number)[];
  resolve: (reply: unknown) => void;
  reject: (err: unknown) => void;
}

/** RedisStoreOptions configure the shared store. */
export interface RedisStoreOptions {
  /** Prefix of every key, so that one Redis can hold several deployments (no braces: they would tag hash slots). */
  keyPrefix?: string;
  /** Longest wait for one command before the store answers unavailable. */
  commandTimeoutMs?: number;
}

/** Error replies that mean Redis cannot serve for now (their first word). */
const UNAVAILABLE_REPLIES = /^(READONLY|BUSY|OOM|MASTERDOWN|LOADING|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MOVED|ASK)\b/;

/** CREDENTIALS_REFUSED matches Redis refusing who connects: a wrong user or password (WRONGPASS), or none where one is needed (NOAUTH). */
const CREDENTIALS_REFUSED = /\b(WRONGPASS|NOAUTH)\b|\b(invalid password)\b/;

/**
 * NotReplicatedError is a deciding write a replica did not confirm in time: unavailable, since a
 * failover could still lose it; its reply tells a caller whose script wrote nothing (a refusal)
 * that there was nothing to lose.
 */
class NotReplicatedError extends StoreUnavailableError {
  readonly reply: unknown;
  constructor(message: string, reply: unknown) {
    super(message);
    this.reply = reply;
  }
}

/** Quotas as QUOTAS takes them: keys, and three arguments each. */
interface QuotaArgs {
  keys: string[];
  args: (string | number)[];
  /** The index of each in the quotas given (a Redis Cluster takes some apart). */
  index: number[];
}

/**
 * RedisStore is the StateStore shared by several verifier replicas: every deciding operation is one
 * Lua script, atomic on the server; expiries are Redis TTLs. On one Redis (not a cluster), the
 * scripts asked in one event-loop turn go at its end as one call (see run). While Redis cannot be
 * reached, operations fail with StoreUnavailableError at once (at the end of the turn for those
 * scripts: no queueing until Redis is back), and the client reconnects.
 *
 * On a Redis Cluster, a store's keys share one hash slot ({ns/store} in their names), so that each
 * operation is still one script on one master; a quota shared by stores (an account's rate) is
 * taken in its own step first and given back if the store refuses. A deciding write is answered
 * only once a replica has it (WAIT), so that a failover loses no approval or enrollment that was
 * answered: until it has, the store is unavailable.
 */
export class RedisStore implements StateStore {
  private readonly redis: ScriptClient;
  private readonly p: string;
  private readonly cluster: boolean;
  private readonly replicas: number;
  private readonly waitMs: number;
  /** The script runs asked this turn of a Redis that is not a cluster, not sent yet (see run). */
  private queued: QueuedRun[] = [];
  /** Whether the histories of an earlier version were added to the set the sweep walks (see discoverHistories). */
  private historiesFound = false;
  /** The stores whose history and outbox are in the sets the sweep walks (added once a process, before their first write). */
  private readonly registered = new Set<string>();
  /** How Redis refused the credentials before the store was first ready (WRONGPASS, NOAUTH), until it is. */
  private refusedWith: string | undefined;
  private wasReady = false;
  /** Who waits on the first contact's outcome (firstContact). */
  private readonly contactWaiters = new Set<(refusal: string | undefined) => void>();

  constructor(url: string, options: RedisStoreOptions = {}) {
    const target = parseRedisTarget(url);
    if ('error' in target) throw new Error(`--redis: ${target.error}`);
    const commandTimeout = options.commandTimeoutMs ?? 2000;
    // A command whose reply a dropped connection lost may have run: it fails (StoreUnavailableError)
    // instead of being sent again after the reconnect, which would run a script twice (an attempt
    // counted twice, a quota taken twice, an approval answered as a refusal).
    const noResend = { maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, commandTimeout } as const;
    if (target.kind === 'cluster') {
      this.redis = new Cluster(target.nodes, {
        enableOfflineQueue: false,
        // Redirections and CLUSTERDOWN/TRYAGAIN replies are of commands that did not run: retried.
        // A closed connection's command may have run: not retried (retryDelayOnFailover 0).
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 100,
        retryDelayOnTryAgain: 100,
        maxRedirections: 16,
        slotsRefreshTimeout: commandTimeout,
        clusterRetryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 3000),
        redisOptions: {
          ...noResend,
          ...(target.username !== undefined ? { username: target.username } : {}),
          ...(target.password !== undefined ? { password: target.password } : {}),
          ...(target.tls ? { tls: {} } : {}),
        },
      }) as ScriptClient;
      // The cluster client opens a node's connection on its first command, and refuses the commands
      // that come while it opens (no queue): every node's is opened as soon as the node is known.
      this.redis.on('+node', (node: Redis) => {
        node.on('error', () => undefined); // reported through the failing operations
        if (node.status === 'wait') node.connect().catch(() => undefined);
      });
    } else {
      const client = new Redis(target.url, {
        lazyConnect: false,
        enableOfflineQueue: false,
        ...noResend,
        retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 3000),
      });
      // A command sent at once goes after the script runs asked before it (see run): they are sent first.
      const sendCommand = client.sendCommand.bind(client);
      client.sendCommand = (...args: Parameters<Redis['sendCommand']>): ReturnType<Redis['sendCommand']> => {
        if (this.queued.length > 0) this.sendQueued();
        return sendCommand(...args);
      };
      this.redis = client as ScriptClient;
    }
    this.cluster = target.kind === 'cluster';
    this.replicas = target.kind === 'cluster' ? target.replicas : 0;
    this.waitMs = Math.max(1, Math.floor(commandTimeout / 4));
    // Errors are reported through the failing operations; a refusal of the credentials before the
    // store was first ready is also kept, for start-up to tell (firstContact) and ready to answer.
    this.redis.on('error', (err: Error) => this.contacted(err));
    this.redis.on('ready', () => {
      this.wasReady = true;
      this.refusedWith = undefined; // the credentials were mended meanwhile
      this.contacted(undefined);
    });
    for (const [name, s] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, { ...(s.keys !== undefined ? { numberOfKeys: s.keys } : {}), lua: s.lua });
    if (!this.cluster) this.redis.defineCommand('batch', { lua: batchLua() });
    this.p = options.keyPrefix ?? 'smsauth:';
    if (/[{}]/.test(this.p)) throw new Error(`the Redis key prefix "${this.p}" has a brace: braces tag hash slots`);
    if (this.cluster) this.historiesFound = true; // a Redis Cluster holds nothing of the versions before it was supported
  }

  /**
   * ready resolves once connected, or rejects after timeoutMs (Infinity: waits as long as it takes),
   * or at once when Redis refused the credentials before the store was first ready.
   */
  // ready and firstContact bound a real connection's wait with the system's timers, not an injected
  // Clock (STYLE 6c): what they wait on is the network's time, and their tests run a real Redis.
  async ready(timeoutMs = 5000): Promise<void> {
    const refusedNow = (): StoreUnavailableError => new StoreUnavailableError(`Redis refused the credentials (${this.refusedWith ?? ''})`);
    if (this.refusedWith !== undefined) throw refusedNow();
    let timer: NodeJS.Timeout | undefined;
    let waiter: ((refusal: string | undefined) => void) | undefined;
    const late = new Promise<never>((_, reject) => {
      if (Number.isFinite(timeoutMs)) timer = setTimeout(() => reject(new StoreUnavailableError('Redis did not become ready')), timeoutMs);
      waiter = (refusal) => {
        if (refusal !== undefined) reject(refusedNow());
      };
      this.contactWaiters.add(waiter);
    });
    try {
      await Promise.race([this.answered(), late]);
    } finally {
      clearTimeout(timer);
      this.contactWaiters.delete(waiter!);
    }
  }

  /**
   * firstContact waits, at most timeoutMs, for the outcome of connecting: undefined once Redis
   * answers, cannot be reached (a connection error: it may come up later) or the time is over; the
   * refusal (WRONGPASS, NOAUTH) when Redis refused the credentials, which waiting never mends.
   */
  firstContact(timeoutMs: number): Promise<string | undefined> {
    if (this.refusedWith !== undefined || this.wasReady) return Promise.resolve(this.refusedWith);
    return new Promise((resolve) => {
      const done = (refusal: string | undefined): void => {
        clearTimeout(timer);
        this.contactWaiters.delete(done);
        resolve(refusal);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.contactWaiters.add(done);
    });
  }

  /** contacted hears how a connection attempt went: ready (undefined) or an error, a refusal of the credentials kept until first ready. */
  private contacted(err: Error | undefined): void {
    // A Redis Cluster says "Failed to refresh slots cache", with the node's reply beside it.
    const said = err === undefined ? '' : `${err.message ?? ''} ${(err as { lastNodeError?: Error }).lastNodeError?.message ?? ''}`;
    const refused = err === undefined || this.wasReady ? null : CREDENTIALS_REFUSED.exec(said);
    if (refused !== null) this.refusedWith ??= refused[1] ?? refused[2]!;
    for (const w of [...this.contactWaiters]) w(refused !== null ? this.refusedWith : undefined);
  }

  /**
   * answered resolves once connected, however long it takes and whatever Redis refused before (the
   * client keeps trying); on a cluster, once every master's connection is open too (the client
   * knows its slots first).
   */
  async answered(): Promise<void> {
    if (this.redis.status !== 'ready') await new Promise((resolve) => this.redis.once('ready', resolve));
    if (this.redis instanceof Cluster) {
      const opening = this.redis.nodes('master').filter((n) => n.status !== 'ready');
      await Promise.all(opening.map((n) => new Promise((resolve) => n.once('ready', resolve))));
    }
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      const e = err as { name?: string; message?: string };
      // Replies that say Redis cannot serve now (a replica after a failover, a script running too
      // long, out of memory, loading its data) are an outage too; other replies are defects.
      const busy = e.name === 'ReplyError' && UNAVAILABLE_REPLIES.test(e.message ?? '');
      if (e.name === 'ReplyError' && !busy) throw err;
      // A cluster client whose connection to a master closed keeps sending that master's slots to
      // it until it reads the slots again; it does so by itself only when it may resend the
      // command, which this store forbids: it is told to here.
      if (this.redis instanceof Cluster && e.name !== 'ReplyError') this.redis.refreshSlotsCache();
      throw new StoreUnavailableError(`Redis is unavailable (${busy ? (e.message ?? '').split(' ')[0] : (e.name ?? 'Error')})`, { cause: err });
    }
  }

  /**
   * decide runs a deciding script: on one Redis, with the others asked in the same turn (run); on a
   * Redis Cluster, with WAIT after it on the same master, and answers only once `replicas` replicas
   * have what it wrote (else StoreUnavailableError: the write may yet be lost to a failover, so it
   * is not answered as done).
   */
  private async decide(name: ScriptName, args: (string | number)[]): Promise<unknown> {
    if (!this.cluster) return this.run(name, args);
    if (this.replicas === 0) return this.redis[name](...args);
    return this.replicatedWrite(() => (this.redis.pipeline() as ScriptPipeline)[name](...args));
  }

  /**
   * run asks a script's run of a Redis that is not a cluster, sent at the end of this turn with the
   * others asked in it, in order, as one call (batchLua; at most MAX_RUNS_PER_CALL a call), so
   * that under load a turn's operations cost one command, one write and one reply instead of one
   * each (group commit, as the SQLite store's batches; docs/benchmarks.md). Each run is as atomic
   * as alone, and fails alone. A command sent at once, before the turn's end, sends the runs asked
   * before it first: nothing overtakes what was asked before it (except a script Redis no longer
   * has, after SCRIPT FLUSH: ioredis sends it again, with its text, after what was sent meanwhile).
   */
  private run(name: ScriptName, args: (string | number)[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(this.sendQueued);
      this.queued.push({ name, args, resolve, reject });
    });
  }

  /** sendQueued sends the runs asked so far, in order, as few calls as MAX_RUNS_PER_CALL allows. */
  private readonly sendQueued = (): void => {
    // Emptied first: the sends below go through sendCommand, which then finds nothing queued.
    const runs = this.queued;
    this.queued = [];
    for (let i = 0; i < runs.length; i += MAX_RUNS_PER_CALL) this.sendRuns(runs.slice(i, i + MAX_RUNS_PER_CALL));
  };

  /**
   * sendRuns sends runs: one, as its script's own call; several, as one call of the batch script
   * (batchLua), each answered its own reply. Each call is made in an async function, so that one
   * that throws at once fails its runs as one that fails later does.
   */
  private sendRuns(runs: readonly QueuedRun[]): void {
    if (runs.length === 1) {
      const run = runs[0]!;
      void (async () => this.redis[run.name](...run.args))().then(run.resolve, run.reject);
      return;
    }
    const keys: (string | number)[] = [];
    const headers: (string | number)[] = [];
    const rest: (string | number)[] = [];
    for (const r of runs) {
      const fixed: number | undefined = SCRIPTS[r.name].keys;
      const first = fixed === undefined ? 1 : 0;
      const end = first + (fixed ?? Number(r.args[0]));
      keys.push(...r.args.slice(first, end));
      headers.push(r.name, end - first, r.args.length - end);
      rest.push(...r.args.slice(end));
    }
    void (async () => this.redis.batch(keys.length, ...keys, runs.length, ...headers, ...rest))().then(
      (replies) => {
        runs.forEach((r, i) => {
          // A reply that is no array is a defect of the script, not an outage (call() tells them apart by the name).
          const reply = Array.isArray(replies) ? (replies[i] as unknown) : Object.assign(new Error('a batch call answered no array'), { name: 'ReplyError' });
          if (reply instanceof Error) r.reject(reply);
          else r.resolve(reply);
        });
      },
      (err: unknown) => {
        for (const r of runs) r.reject(err);
      },
    );
  }

  /**
   * replicatedWrite runs a pipeline of one write (built by write) with WAIT after it (see
   * replicated). The client follows a MOVED reply by itself unless the pipeline's WAIT was
   * answered: then the write, which did not run, is sent again once the slots are read again.
   */
  private async replicatedWrite(write: () => ChainableCommander): Promise<unknown> {
    for (let tries = 1; ; tries++) {
      try {
        return await this.replicated(write());
      } catch (err) {
        const moved = (err as { name?: string }).name === 'ReplyError' && /^(MOVED|ASK) /.test((err as Error).message);
        if (!moved || tries === 3) throw err;
        await new Promise<void>((resolve) => (this.redis as Cluster).refreshSlotsCache(() => resolve()));
      }
    }
  }

  /** replicated runs a pipeline of one write with WAIT after it, and answers the write's reply once replicated. */
  private async replicated(pipeline: ChainableCommander): Promise<unknown> {
    const replies = (await pipeline.wait(this.replicas, this.waitMs).exec()) ?? [];
    const [[err, reply] = [new Error('no reply')], [waitErr, acked] = [new Error('no reply')]] = replies;
    if (err !== null) throw err;
    if (waitErr !== null) throw waitErr;
    if ((acked as number) < this.replicas)
      throw new NotReplicatedError(`Redis has not replicated the write (${String(acked)} of ${this.replicas} replicas)`, reply);
    return reply;
  }

  /**
   * refusalOrThrow answers a script's reply even when its replica did not confirm it, if the reply
   * is a refusal (its first word is not `wrote`): a refusal wrote nothing that a failover could
   * lose (at most a verification marked expired, which the next read marks again).
   */
  private async refusalOrThrow(wrote: string, run: () => Promise<unknown>): Promise<unknown> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof NotReplicatedError && Array.isArray(err.reply) && err.reply[0] !== wrote) return err.reply;
      throw err;
    }
  }

  /** scope names a store in its keys: on a Redis Cluster a hash tag, so that one store's keys share a slot. */
  private scope(ns: string, store: string): string {
    return this.cluster ? keyTag(ns, store) : `${ns}/${store}`;
  }

  private vkey(ns: string, store: string, id: string): string {
    return `${this.p}vr:${this.scope(ns, store)}/${id}`;
  }

  private lkey(ns: string, store: string, user: string): string {
    return `${this.p}lock:${this.scope(ns, store)}/${user}`;
  }

  private ekey(ns: string, store: string, user: string): string {
    return `${this.p}enr:${this.scope(ns, store)}/${user}`;
  }

  private messageKey(provider: string, messageId: string): string {
    return `${this.p}msg:${provider}:${messageId}`;
  }

  /** outboxKeys are a store's outbox keys as OUTBOX takes them: entries by seq, their state. */
  private outboxKeys(ns: string, store: string): [string, string] {
    const base = `${this.p}ob:${this.scope(ns, store)}`;
    return [base, `${base}:r`];
  }

  /** historyKeys are a store's history keys as HISTORY takes them: events by seq, seqs by time, the counter, the user's index. */
  private historyKeys(ns: string, store: string, user: string): [string, string, string, string] {
    const base = `${this.p}h:${this.scope(ns, store)}`;
    return [base, `${base}:t`, `${base}:seq`, `${base}:u:${user}`];
  }

  /**
   * register adds a store's history and outbox to the sets the sweep walks, once a process, before
   * the store's first write that may create them (a script touches one slot; the sets are elsewhere).
   */
  private register(ns: string, store: string): Promise<void> | undefined {
    const key = `${ns}/${store}`;
    if (this.registered.has(key)) return undefined; // the usual case: no promise on a check's path
    return Promise.all([
      this.redis.sadd(`${this.p}h:stores`, this.historyKeys(ns, store, '')[0]),
      this.redis.sadd(`${this.p}ob:stores`, this.outboxKeys(ns, store)[0]),
    ]).then(() => {
      this.registered.add(key);
    });
  }

  /** unindex takes trimmed events ("user seq", as a script collected them) out of their users' indexes. */
  private async unindex(base: string, trimmed: readonly string[]): Promise<void> {
    if (trimmed.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const t of trimmed) {
      const sep = t.lastIndexOf(' ');
      pipeline.zrem(`${base}:u:${t.slice(0, sep)}`, t.slice(sep + 1));
    }
    await pipeline.exec();
  }

  /**
   * splitQuotas parts quotas into the verification's own slot's and the others' (on a Redis Cluster,
   * those of another hash tag, such as an account's rate shared by stores).
   */
  private splitQuotas(quotas: readonly SendQuota[], now: number, ownKey: string): { own: QuotaArgs; foreign: QuotaArgs[] } {
    const all = this.quotaArgs(quotas, now);
    const own: QuotaArgs = { keys: [], args: [], index: [] };
    const bySlot = new Map<string, QuotaArgs>();
    const tag = hashTag(ownKey);
    all.keys.forEach((key, i) => {
      const k = hashTag(key);
      let into = own;
      if (this.cluster && k !== tag) {
        into = bySlot.get(k) ?? { keys: [], args: [], index: [] };
        bySlot.set(k, into);
      }
      into.keys.push(key);
      into.args.push(...all.args.slice(i * 3, i * 3 + 3));
      into.index.push(i);
    });
    return { own, foreign: [...bySlot.values()] };
  }

  /**
   * takeForeign takes quotas of other slots, one slot at a time, before the store's own step:
   * undefined when all were taken, else the refused one (all taken so far given back).
   */
  private async takeForeign(foreign: readonly QuotaArgs[], now: number): Promise<{ index: number; retryAfterMs: number } | undefined> {
    for (const [n, q] of foreign.entries()) {
      const refused = (await this.redis.takeQuotas(q.keys.length, ...q.keys, now, ...q.args)) as [number, number] | null;
      if (refused !== null) {
        await this.refund(foreign.slice(0, n));
        return { index: q.index[refused[0] - 1]!, retryAfterMs: refused[1] };
      }
    }
    return undefined;
  }

  /** refund gives back quotas of other slots taken for a send the store's own step refused. */
  private async refund(foreign: readonly QuotaArgs[]): Promise<void> {
    for (const q of foreign) await this.redis.refundQuotas(q.keys.length, ...q.keys, ...q.args);
  }

  createVerification(
    record: VerificationRecord,
    idempotency: Idempotency | undefined,
    quotas: readonly SendQuota[],
    proof?: ProofSpend,
    enrolled?: EnrollmentExpected,
  ): Promise<CreateResult> {
    return this.call(async (): Promise<CreateResult> => {
      const key = this.vkey(record.namespace, record.store, record.id);
      const idemKey = idempotency === undefined ? key : `${this.p}ik:${this.scope(record.namespace, record.store)}/${idempotency.key}`;
      const keep = record.expiresAt - record.createdAt + KEEP_AFTER_EXPIRY_MS;
      const { approvedAt: _a, proofUsed: _p, ...stored } = record;
      const { own, foreign } = this.splitQuotas(quotas, record.createdAt, key);
      const enrollmentKey = enrolled === undefined ? key : this.ekey(record.namespace, record.store, record.user);
      // Quotas of other slots are taken before the script. What the script answers before taking
      // any (an enrollment found otherwise than expected, a replayed Idempotency-Key) is read first,
      // in one step of the store's slot, so that none are taken for it; the script judges again.
      let replay = false;
      if (foreign.length > 0) {
        const [found = null, earlier = null] = await this.redis.mget(enrollmentKey, idemKey);
        const enrollment = found === null ? undefined : (JSON.parse(found) as Enrollment);
        if (enrolled !== undefined && !isEnrollmentAsExpected(enrollment, enrolled)) return { outcome: 'enrollment-differs', enrollment };
        replay = idemKey !== key && earlier !== null;
      }
      const taken = replay ? undefined : await this.takeForeign(foreign, record.createdAt);
      if (taken !== undefined) return { outcome: 'limited', quota: quotas[taken.index]!.name, retryAfterMs: taken.retryAfterMs };
      const proofKey = proof === undefined ? key : this.vkey(record.namespace, record.store, proof.id);
      const [outcome, id, index, retryAfterMs] = (await this.refusalOrThrow('created', () =>
        this.decide('create', [
          4 + own.keys.length,
          key,
          idemKey,
          proofKey,
          enrollmentKey,
          ...own.keys,
          idempotency?.fingerprint ?? '',
          idempotency?.ttlMs ?? 0,
          record.id,
          keep,
          record.createdAt,
          proof?.maxAgeMs ?? 0,
          record.user,
          record.replaces ?? '',
          JSON.stringify(stored),
          enrolled?.to ?? '',
          enrolled?.orNone === true ? '1' : '0',
          ...own.args,
        ]),
      )) as [string, string, number?, number?];
      // A create that failed (not known to have run) keeps what the other slots gave: it errs towards refusing.
      if (outcome !== 'created' && !replay) await this.refund(foreign);
      if (outcome === 'created') return { outcome: 'created', record };
      if (outcome === 'enrollment') return { outcome: 'enrollment-differs', enrollment: id === '' ? undefined : (JSON.parse(id) as Enrollment) };
      if (outcome === 'proof') return { outcome: 'proof-refused', reason: id as Exclude<ProofResult, 'ok'> };
      if (outcome === 'limited') return { outcome: 'limited', quota: quotas[own.index[index! - 1]!]!.name, retryAfterMs: retryAfterMs! };
      const earlier = await this.getVerification(record.namespace, record.store, id);
      if (earlier === undefined) throw new Error('an idempotency key outlived its verification');
      return { outcome: outcome as 'replayed' | 'conflict', record: earlier };
    });
  }

  getVerification(namespace: string, store: string, id: string): Promise<VerificationRecord | undefined> {
    return this.call(async () => {
      const v = await this.redis.get(this.vkey(namespace, store, id));
      return v === null ? undefined : (JSON.parse(v) as VerificationRecord);
    });
  }

  attempt(
    namespace: string,
    store: string,
    id: string,
    now: number,
    candidates: readonly CodeMac[],
    audit?: AttemptAudit,
    user?: string,
  ): Promise<AttemptOutcome | undefined> {
    return this.call(async () => {
      // The user's keys are the script's: a caller that does not know whose the verification is
      // has it read first (it never changes).
      const owner = user ?? (await this.getVerification(namespace, store, id))?.user;
      if (owner === undefined) return undefined;
      if (audit !== undefined) await this.register(namespace, store);
      const h = this.historyKeys(namespace, store, owner);
      const events = (['approved', 'wrong', 'exhausted', 'locked'] as const).map((k) =>
        audit?.events[k] === undefined ? '' : JSON.stringify(audit.events[k]),
      );
      const retention = audit === undefined ? ['0', '0'] : [now - audit.retention.maxAgeMs, audit.retention.maxEvents];
      const r = (await this.decide('attempt', [
        this.vkey(namespace, store, id),
        this.ekey(namespace, store, owner),
        ...h,
        this.lkey(namespace, store, owner),
        ...this.outboxKeys(namespace, store),
        now,
        ...events,
        ...retention,
        LOCKOUT_TTL_MS,
        ENROLLMENT_CHANGED_JSON,
        REPLACEMENT_REFUSED_JSON,
        `,${(audit?.publish ?? []).join(',')},`,
        owner,
        ...candidates.flatMap((c) => [c.keyId, c.mac]),
      ])) as [number, number, string, string, number, string[]] | null;
      if (r === null) return undefined;
      await this.unindex(h[0], r[5]);
      const record = JSON.parse(r[2]) as VerificationRecord;
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
    audit?: AuditWrite,
  ): Promise<VerificationRecord | undefined> {
    return this.call(async () => {
      const args = [status, failure === undefined ? '' : JSON.stringify(failure), approvedAt === undefined ? '' : String(approvedAt)];
      if (audit === undefined) {
        const [r] = (await this.decide('finish', [1, this.vkey(namespace, store, id), ...args])) as [string | null, string[]];
        return r === null ? undefined : (JSON.parse(r) as VerificationRecord);
      }
      await this.register(namespace, store);
      const { event } = audit;
      const h = this.historyKeys(namespace, store, event.user);
      const [r, trimmed] = (await this.decide('finish', [
        7,
        this.vkey(namespace, store, id),
        ...h,
        ...this.outboxKeys(namespace, store),
        ...args,
        JSON.stringify(event),
        event.time,
        event.time - audit.retention.maxAgeMs,
        audit.retention.maxEvents,
        audit.publish === true ? '1' : '',
        event.user,
      ])) as [string | null, string[]];
      await this.unindex(h[0], trimmed);
      return r === null ? undefined : (JSON.parse(r) as VerificationRecord);
    });
  }

  beginResend(namespace: string, store: string, id: string, now: number, code: CodeMac, quotas: readonly SendQuota[]): Promise<ResendResult | undefined> {
    return this.call(async (): Promise<ResendResult | undefined> => {
      const key = this.vkey(namespace, store, id);
      const { own, foreign } = this.splitQuotas(quotas, now, key);
      if (foreign.length > 0) {
        // The verification's own refusals come first, as in one script: judged on a read before
        // other slots' quotas are taken (the script judges again).
        const current = await this.getVerification(namespace, store, id);
        if (current === undefined) return undefined;
        const refusal = resendRefusal(current, now);
        if (refusal !== undefined && refusal.reason !== 'not-pending') return { ok: false, record: current, ...refusal };
      }
      const taken = await this.takeForeign(foreign, now);
      if (taken !== undefined) {
        const record = await this.getVerification(namespace, store, id);
        return record === undefined ? undefined : { ok: false, reason: 'quota', record, quota: quotas[taken.index]!.name, retryAfterMs: taken.retryAfterMs };
      }
      const r = (await this.refusalOrThrow('ok', () =>
        this.decide('beginResend', [
          1 + own.keys.length,
          key,
          ...own.keys,
          now,
          JSON.stringify(code),
          JSON.stringify({ status: 'sending', updatedAt: now }),
          ...own.args,
        ]),
      )) as [string, number, string, number?] | null;
      if (r?.[0] !== 'ok') await this.refund(foreign);
      if (r === null) return undefined;
      const record = JSON.parse(r[2]) as VerificationRecord;
      if (r[0] === 'ok') return { ok: true, record };
      if (r[0] === 'cooldown') return { ok: false, reason: 'cooldown', record, retryAfterMs: r[1] };
      if (r[0] === 'quota') return { ok: false, reason: 'quota', record, quota: quotas[own.index[r[3]! - 1]!]!.name, retryAfterMs: r[1] };
      return { ok: false, reason: r[0] as 'not-pending' | 'max-sends', record };
    });
  }

  setDelivery(namespace: string, store: string, id: string, delivery: Delivery): Promise<void> {
    return this.call(async () => {
      await this.redis.setDelivery(this.vkey(namespace, store, id), JSON.stringify(delivery), 0);
    });
  }

  recordSent(ref: MessageRef, provider: string, delivery: Delivery & { messageId: string }, _now: number, ttlMs: number): Promise<void> {
    return this.call(async () => {
      const index = this.messageKey(provider, delivery.messageId);
      const ttl = Math.max(1, Math.round(ttlMs));
      const key = this.vkey(ref.namespace, ref.store, ref.id);
      if (!this.cluster) await this.run('recordSent', [key, index, JSON.stringify(delivery), JSON.stringify(ref), ttl]);
      else {
        // The message's index and the verification are in different slots of a Redis Cluster: two
        // commands, sent together (a receipt comes long after both).
        await Promise.all([this.redis.set(index, JSON.stringify(ref), 'PX', ttl), this.redis.setDelivery(key, JSON.stringify(delivery), 1)]);
      }
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
      const key = this.ekey(namespace, store, enrollment.user);
      if (this.replicas === 0) await this.redis.set(key, JSON.stringify(enrollment));
      else await this.replicatedWrite(() => this.redis.pipeline().set(key, JSON.stringify(enrollment)));
    });
  }

  deleteEnrollment(namespace: string, store: string, user: string, audit?: AuditWrite, proof?: ProofSpend): Promise<DeleteResult> {
    return this.call(async (): Promise<DeleteResult> => {
      const time = audit?.event.time ?? proof?.now ?? 0;
      if (audit !== undefined) await this.register(namespace, store);
      const key = this.ekey(namespace, store, user);
      const h = this.historyKeys(namespace, store, user);
      const [outcome, value, trimmed] = (await this.decide('deleteEnrollment', [
        key,
        ...h,
        proof === undefined ? key : this.vkey(namespace, store, proof.id),
        ...this.outboxKeys(namespace, store),
        audit === undefined ? '' : JSON.stringify(audit.event),
        user,
        time,
        audit === undefined ? 0 : time - audit.retention.maxAgeMs,
        audit?.retention.maxEvents ?? 0,
        proof?.maxAgeMs ?? 0,
        audit?.publish === true ? '1' : '',
      ])) as [string, string?, string[]?];
      if (outcome === 'none') return { outcome: 'none' };
      if (outcome === 'proof') return { outcome: 'proof-refused', reason: value as Exclude<ProofResult, 'ok'> };
      await this.unindex(h[0], trimmed ?? []);
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
      await this.register(namespace, store);
      const event = JSON.stringify({ ...audit.event, result: 'success' });
      const h = this.historyKeys(namespace, store, user);
      const [was, trimmed] = (await this.decide('clearLockout', [
        this.lkey(namespace, store, user),
        ...h,
        ...this.outboxKeys(namespace, store),
        now,
        event,
        user,
        now - audit.retention.maxAgeMs,
        audit.retention.maxEvents,
        audit.publish === true ? '1' : '',
      ])) as [number, string[]];
      await this.unindex(h[0], trimmed);
      return was === 1;
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
      await this.register(event.namespace, event.store);
      const h = this.historyKeys(event.namespace, event.store, event.user);
      const trimmed = (await this.decide('addHistory', [
        ...h,
        JSON.stringify(event),
        event.time,
        event.time - retention.maxAgeMs,
        retention.maxEvents,
      ])) as string[];
      await this.unindex(h[0], trimmed);
    });
  }

  listHistory(namespace: string, store: string, query: HistoryQuery): Promise<HistoryPage> {
    return this.call(async () => {
      const [base] = this.historyKeys(namespace, store, '');
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
      await this.call(async () => this.register(publish.namespace, publish.store));
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
    // Keys expire by themselves; each store's history is trimmed by age and count in bounded
    // steps, and indexed by user where an earlier version left it unindexed; outbox entries past
    // their keep go from the oldest.
    await this.call(async () => {
      const stores = `${this.p}h:stores`;
      await this.discoverHistories(stores);
      for (const base of await this.redis.smembers(stores)) {
        await this.indexOld(base);
        for (;;) {
          const [done, trimmed] = (await this.redis.sweepHistory(base, `${base}:t`, now - history.maxAgeMs, history.maxEvents)) as [number, string[]];
          await this.unindex(base, trimmed);
          if (done === 0) break;
        }
      }
      for (const ob of await this.redis.smembers(`${this.p}ob:stores`)) {
        for (;;) {
          const head = await this.redis.zrange(ob, '0', '99');
          const old = head.map((m) => JSON.parse(m) as Omit<OutboxEntry, 'namespace' | 'store'>).filter((e) => e.time < now - OUTBOX_KEEP_MS);
          if (old.length > 0) await this.redis.outboxSettle(ob, `${ob}:r`, `${ob}:lease`, '', old.length, ...old.map((e) => e.seq));
          if (old.length < 100) break;
        }
      }
    });
  }

  /**
   * indexOld indexes by user the events of a store's history that an earlier version wrote
   * without (base:ix is the last seq indexed), a thousand at a time; indexing twice is harmless.
   */
  private async indexOld(base: string): Promise<void> {
    if (this.cluster) return; // a Redis Cluster holds nothing of the versions before it was supported
    for (;;) {
      const mark = (await this.redis.get(`${base}:ix`)) ?? '0';
      const members = await this.redis.zrangebyscore(base, `(${mark}`, '+inf', 'WITHSCORES', 'LIMIT', 0, 1000);
      if (members.length === 0) return;
      const pipeline = this.redis.pipeline();
      for (let i = 0; i < members.length; i += 2) {
        let user: unknown;
        try {
          user = (JSON.parse(members[i]!) as { user?: unknown }).user;
        } catch {
          user = undefined;
        }
        if (typeof user === 'string') pipeline.zadd(`${base}:u:${user}`, members[i + 1]!, members[i + 1]!);
      }
      pipeline.set(`${base}:ix`, members[members.length - 1]!);
      await pipeline.exec();
      if (members.length < 2000) return;
    }
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
      await this.redis.set(`${this.p}al:${this.scope(namespace, store)}/${alias}`, id, 'PX', Math.max(1, Math.ceil(ttlMs)));
    });
  }

  getAlias(namespace: string, store: string, alias: string): Promise<string | undefined> {
    return this.call(async () => (await this.redis.get(`${this.p}al:${this.scope(namespace, store)}/${alias}`)) ?? undefined);
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
      const single = this.redis as Redis;
      let cursor = '0';
      do {
        const [next, keys] = await single.scan(cursor, 'MATCH', `${globEscape(this.p)}h:*`, 'COUNT', 500);
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
      if (this.redis instanceof Cluster) await Promise.all(this.redis.nodes('master').map((n) => n.ping()));
      else await this.redis.ping();
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
