import type { FraudBlock, FraudPolicy } from '../core/fraud-guard.ts';
import type { CodeMac, Delivery, Enrollment, HistoryEvent, HistoryPage, HistoryQuery, LockoutState, VerificationRecord, VerificationStatus } from './types.ts';

/** Idempotency ties a client's Idempotency-Key to one verification. */
export interface Idempotency {
  key: string;
  /** Hash of the request, so that a key reused for another request is refused. */
  fingerprint: string;
  ttlMs: number;
}

/** AttemptOutcome is one check: whether it counted as an attempt, and whether it approved the verification. */
export interface AttemptOutcome {
  record: VerificationRecord;
  counted: boolean;
  approved: boolean;
  /** Until when the user is locked out, when that refused the attempt (authentication only). */
  lockedUntil?: number;
  /** This wrong code reached the role's threshold and locked the user out. */
  lockedNow?: boolean;
}

/** ResendResult is a resend's admission: the updated record, or why not. */
export type ResendResult =
  | { ok: true; record: VerificationRecord }
  | { ok: false; reason: 'not-pending' | 'max-sends'; record: VerificationRecord }
  | { ok: false; reason: 'cooldown'; record: VerificationRecord; retryAfterMs: number }
  | { ok: false; reason: 'quota'; record: VerificationRecord; quota: string; retryAfterMs: number };

/**
 * CreateResult is a new verification stored, an earlier one found by its Idempotency-Key, a quota
 * that refused it, a proof refused, or the user's enrollment found otherwise than expected (with
 * the enrollment found, undefined for none).
 */
export type CreateResult =
  | { outcome: 'created' | 'replayed' | 'conflict'; record: VerificationRecord }
  | { outcome: 'limited'; quota: string; retryAfterMs: number }
  | { outcome: 'proof-refused'; reason: Exclude<ProofResult, 'ok'> }
  | { outcome: 'enrollment-differs'; enrollment: Enrollment | undefined };

/**
 * EnrollmentExpected is what an enrollment's creation requires of the user's enrollment, read in
 * the same step: that its number be `to`; with orNone, having none will do too.
 */
export interface EnrollmentExpected {
  to: string;
  orNone: boolean;
}

/** isEnrollmentAsExpected tells whether the user's enrollment found (undefined: none) is as expected. */
export function isEnrollmentAsExpected(found: Enrollment | undefined, expected: EnrollmentExpected): boolean {
  return found === undefined ? expected.orNone : found.to === expected.to;
}

/** ProofSpend names the approved authentication that a replacement or a removal of the user's number spends, and when. */
export interface ProofSpend {
  id: string;
  maxAgeMs: number;
  now: number;
}

/** DeleteResult is an unenrollment: the enrollment removed, none to remove, or a proof refused (nothing removed). */
export type DeleteResult =
  { outcome: 'deleted'; enrollment: Enrollment } | { outcome: 'none' } | { outcome: 'proof-refused'; reason: Exclude<ProofResult, 'ok'> };

/**
 * SendQuota is one limit a send must fit in: a fixed window of counted sends (aligned on multiples
 * of windowMs), or a token bucket refilled at perSecond up to burst.
 */
export type SendQuota = { name: string; key: string } & (
  { kind: 'window'; limit: number; windowMs: number } | { kind: 'bucket'; perSecond: number; burst: number }
);

/** QuotaDecision admits a send, or names the first quota it does not fit in and when to retry (for the stores' implementations). */
export type QuotaDecision = { ok: true } | { ok: false; quota: string; retryAfterMs: number };

/** ResendRefusal is why a resend is not admitted. */
export type ResendRefusal = { reason: 'not-pending' | 'max-sends'; retryAfterMs: 0 } | { reason: 'cooldown'; retryAfterMs: number };

/**
 * resendRefusal is the resend rule every store applies (the Redis script restates it): pending and
 * unexpired, sends left, and the cooldown over. undefined admits the resend.
 */
export function resendRefusal(r: VerificationRecord, now: number): ResendRefusal | undefined {
  if (r.status !== 'pending' || now >= r.expiresAt) return { reason: 'not-pending', retryAfterMs: 0 };
  if (r.sends >= r.maxSends) return { reason: 'max-sends', retryAfterMs: 0 };
  const wait = r.lastSentAt + r.resendCooldownMs - now;
  return wait > 0 ? { reason: 'cooldown', retryAfterMs: wait } : undefined;
}

/** enrollmentOf is what approving an enroll verification enrolls: its number, for its user. */
export function enrollmentOf(r: VerificationRecord, now: number): Enrollment {
  return { user: r.user, to: r.to, enrolledAt: now, verificationId: r.id, ...(r.maskedTo !== undefined ? { masked: r.maskedTo } : {}) };
}

/**
 * replacementRefused tells whether approving an enrollment would replace, without leave, the
 * user's number (the stores apply it in the attempt step; the Redis script restates it): the user
 * has another number, and it is not the one the enrollment's proof proved (nor does the helpdesk act).
 * A replacement started with proof of a number that the helpdesk replaced meanwhile is refused.
 */
export function replacementRefused(r: VerificationRecord, current: Enrollment | undefined): boolean {
  return r.purpose === 'enroll' && current !== undefined && current.to !== r.to && r.replaces !== '*' && r.replaces !== current.to;
}

/**
 * REPLACEMENT_REFUSED ends an enrollment that would replace a number enrolled since it started
 * (two first enrollments racing, or one started before another number was enrolled): replacing
 * a number takes a fresh authentication or the helpdesk.
 */
export const REPLACEMENT_REFUSED = {
  code: 'reauthentication_required',
  message: 'the user has another number enrolled; replacing it needs a fresh authentication (proof) or the helpdesk',
} as const;

/** PROOF_MAX_AGE_MS is how long an approved authentication may serve as proof for replacing the user's number. */
export const PROOF_MAX_AGE_MS = 10 * 60_000;

/** ProofResult is whether an authentication could be spent as proof, and why not. */
export type ProofResult = 'ok' | 'not-found' | 'other-user' | 'not-approved' | 'stale' | 'used' | 'other-number';

/**
 * proofRefusal is the proof rule every store applies when it replaces or removes a user's number
 * (the Redis scripts restate it): an authentication of the same user, approved within maxAgeMs
 * of now, not spent before, sent to that number (the user's current one).
 */
export function proofRefusal(
  proof: VerificationRecord | undefined,
  of: { user: string; number: string | undefined },
  spend: ProofSpend,
): Exclude<ProofResult, 'ok'> | undefined {
  if (proof === undefined || proof.purpose !== 'authenticate') return 'not-found';
  if (proof.user !== of.user) return 'other-user';
  if (proof.status !== 'approved' || proof.approvedAt === undefined) return 'not-approved';
  if (proof.proofUsed === true) return 'used';
  if (spend.now - proof.approvedAt > spend.maxAgeMs) return 'stale';
  if (proof.to !== of.number) return 'other-number';
  return undefined;
}

/**
 * AuditWrite is a history event written in the same step as the change it records; with publish,
 * the same step also puts it in the store's outbox, for the identity store's events endpoint.
 */
export interface AuditWrite {
  event: Omit<HistoryEvent, 'seq'>;
  retention: HistoryRetention;
  publish?: boolean;
}

/**
 * AttemptAudit is the history a check records with its attempt: the event for each outcome of a
 * counted attempt (approved; a wrong code with attempts left; a wrong code on the last attempt)
 * and for a lockout it starts, none where the caller records nothing.
 */
export interface AttemptAudit {
  events: Partial<Record<AttemptResult | 'locked', Omit<HistoryEvent, 'seq'>>>;
  retention: HistoryRetention;
  /** The outcomes whose event also goes to the store's outbox, in the same step (see OutboxBody). */
  publish?: readonly (AttemptResult | 'locked')[];
}

/** AttemptResult is how a counted attempt ended. */
export type AttemptResult = 'approved' | 'wrong' | 'exhausted';

/**
 * ENROLLMENT_CHANGED ends an authentication whose right code arrives after the number it was sent
 * to stopped being the user's SMS factor (unenrolled, or replaced by another number): a code on a
 * lost phone stops working when the phone is unenrolled.
 */
export const ENROLLMENT_CHANGED = {
  code: 'enrollment_changed',
  message: 'the SMS enrollment changed after this code was sent; start a new authentication',
} as const;

/** attemptResult names a counted attempt's outcome for its audit (the Redis script restates it). */
export function attemptResult(approved: boolean, r: VerificationRecord): AttemptResult {
  return approved ? 'approved' : r.status === 'max_attempts_reached' ? 'exhausted' : 'wrong';
}

/** HistoryRetention bounds history per identity store, by count and by age (the audit trail's retention). */
export interface HistoryRetention {
  maxEvents: number;
  maxAgeMs: number;
}

/**
 * OutboxBody is what an outbox entry reports: a history event (with its seq) and, for a check, the
 * outcome that recorded it (and a lockout's end); or a fraud-guard counter that a start blocked.
 */
export type OutboxBody =
  | { kind: 'history'; event: HistoryEvent; outcome?: AttemptResult | 'locked'; lockedUntil?: number }
  | { kind: 'fraud'; key: string; until: number; enforced: boolean };

/**
 * OutboxEntry is a change waiting for delivery to the identity store's events endpoint: written in
 * the step that made the change, deleted once delivered. Entries of one key (a user, a fraud-guard
 * counter) are delivered in seq order.
 */
export interface OutboxEntry {
  /** Increasing within a store: the order of the changes. */
  seq: number;
  namespace: string;
  store: string;
  /** The ordering key. */
  key: string;
  /** When the change happened. */
  time: number;
  /** Failed deliveries so far, and when the next may be tried. */
  attempts: number;
  nextAt: number;
  body: OutboxBody;
}

/**
 * OUTBOX_KEEP_MS is how long the sweep keeps an outbox entry: past the deliverer's 24 hours of
 * retries, with an hour of margin, so that the outbox of a store whose events endpoint was
 * removed empties.
 */
export const OUTBOX_KEEP_MS = 25 * 3_600_000;

/** OutboxRetry is a failed delivery's new count, and when to try again. */
export interface OutboxRetry {
  seq: number;
  attempts: number;
  nextAt: number;
}

/** FraudPublish names the store whose outbox gets the blocks a start makes, and whether they refuse (Enforce) or only report. */
export interface FraudPublish {
  namespace: string;
  store: string;
  enforced: boolean;
}

/** MessageRef locates the verification a provider's message belongs to. */
export interface MessageRef {
  namespace: string;
  store: string;
  id: string;
}

/**
 * StateStore is where verifications, enrollments, lockouts, rate limits and history live. Every
 * operation that decides (counting an attempt, ending a verification, admitting a resend, counting
 * a failure, taking from a rate limit) is atomic, so that several verifier replicas can share one
 * store. Times are milliseconds since the epoch, passed in by the caller.
 */
export interface StateStore {
  /**
   * createVerification stores a new verification, in one atomic step with taking one send from
   * each of its quotas, all or none: refused by one, it stores nothing and takes nothing
   * (limited), so that a send refused by one limit costs nothing in the others. With an
   * Idempotency-Key seen before, it returns the earlier verification (replayed) or, when the key
   * came with another request, conflict; neither takes any quota. With a proof (a replacement of
   * the user's number), the proof must pass proofRefusal (proof-refused otherwise, nothing taken),
   * and is spent in the same step: of concurrent uses one wins; a replayed request spends nothing.
   * With `enrolled`, the user's enrollment must be as expected, read in the same step and before
   * anything else (an Idempotency-Key included): otherwise enrollment-differs, with the enrollment
   * found, and nothing stored or taken.
   */
  createVerification(
    record: VerificationRecord,
    idempotency: Idempotency | undefined,
    quotas: readonly SendQuota[],
    proof?: ProofSpend,
    enrolled?: EnrollmentExpected,
  ): Promise<CreateResult>;
  getVerification(namespace: string, store: string, id: string): Promise<VerificationRecord | undefined>;
  /**
   * attempt is one check, in one atomic step. When the verification is pending, unexpired and has
   * attempts left, it counts the attempt and compares the stored code with the candidates (the
   * code as each listed key signs it, see CodeHasher.candidates): a match approves the
   * verification, so that of concurrent right codes one wins, and a miss on the last attempt ends
   * it max_attempts_reached. Approving an enroll verification enrolls its number (enrollmentOf)
   * in the same step: no crash or outage leaves a counted attempt without its outcome, or an
   * approval without its enrollment. A pending verification past its expiry becomes expired.
   * For an authentication the user's lockout applies in the same step: a locked-out user's
   * attempt is refused uncounted (lockedUntil); an approval clears the user's consecutive
   * failures; a wrong code adds one, and the one that reaches the verification's threshold locks
   * the user for its duration (lockedNow). With an audit, a counted attempt also records the
   * history event its outcome names, and a lockout the `locked` event, in the same step: no
   * approval or lockout without its event. An approved enrollment's event gets `numbers`, the
   * replaced number's mask (or null) and the new one's. An enrollment that may not replace
   * (replacementRefused) while the user has another number ends canceled with
   * REPLACEMENT_REFUSED, uncounted. A helpdesk verification neither enrolls nor touches the
   * lockout. An approval records approvedAt. `user` is the verification's user when the caller
   * knows it (a store whose operations must name every key they touch, Redis, reads it otherwise).
   */
  attempt(
    namespace: string,
    store: string,
    id: string,
    now: number,
    candidates: readonly CodeMac[],
    audit?: AttemptAudit,
    user?: string,
  ): Promise<AttemptOutcome | undefined>;
  /**
   * finish moves a pending verification to a final status (approved: at approvedAt, when given),
   * with its audit's event in the same step when given; undefined when it was no longer pending
   * (another request won: nothing is recorded).
   */
  finish(
    namespace: string,
    store: string,
    id: string,
    status: Exclude<VerificationStatus, 'pending'>,
    failure?: { code: string; message: string },
    approvedAt?: number,
    audit?: AuditWrite,
  ): Promise<VerificationRecord | undefined>;
  /**
   * beginResend admits a resend (pending, unexpired, sends left, cooldown over, and room in every
   * quota), takes the quotas and installs the new code, in one atomic step: of concurrent resends
   * one wins, and the losers take no quota.
   */
  beginResend(namespace: string, store: string, id: string, now: number, code: CodeMac, quotas: readonly SendQuota[]): Promise<ResendResult | undefined>;
  /**
   * setDelivery records the latest delivery news of a verification; older news (by updatedAt) does
   * not overwrite newer, and news about a message (messageId) applies only while that message is
   * the one recorded: a late receipt for a code that a resend replaced, during the resend or after
   * it, leaves the new code's delivery; nor does it undo that message's final status.
   */
  setDelivery(namespace: string, store: string, id: string, delivery: Delivery): Promise<void>;
  /**
   * recordSent records a message sent for a verification, in one step: its delivery news (as
   * setDelivery does) and, for ttlMs, which verification the provider's message id belongs to,
   * for delivery receipts.
   */
  recordSent(ref: MessageRef, provider: string, delivery: Delivery & { messageId: string }, now: number, ttlMs: number): Promise<void>;
  findMessage(provider: string, messageId: string, now: number): Promise<MessageRef | undefined>;

  getEnrollment(namespace: string, store: string, user: string): Promise<Enrollment | undefined>;
  /** enrolledAmong returns which of the users have an SMS enrollment (any order). */
  enrolledAmong(namespace: string, store: string, users: readonly string[]): Promise<string[]>;
  putEnrollment(namespace: string, store: string, enrollment: Enrollment): Promise<void>;
  /**
   * deleteEnrollment removes the user's enrollment and returns it; with an audit, records its
   * event in the same step, `numbers.old` the removed number's mask; with a proof, only when it
   * passes proofRefusal for the enrolled number, spending it in the same step.
   */
  deleteEnrollment(namespace: string, store: string, user: string, audit?: AuditWrite, proof?: ProofSpend): Promise<DeleteResult>;

  getLockout(namespace: string, store: string, user: string, now: number): Promise<LockoutState>;
  /** clearLockout forgets the user's failures and ends a lockout, with its event in the same step; it tells whether the user was locked out. */
  clearLockout(namespace: string, store: string, user: string, now: number, audit: AuditWrite): Promise<boolean>;

  addHistory(event: Omit<HistoryEvent, 'seq'>, retention: HistoryRetention): Promise<void>;
  /**
   * listHistory returns matching events newest first. A page holds at most `limit` events; it may
   * hold fewer with a non-null `next` when filters skip many events (each page examines a bounded
   * number), so callers page on until `next` is null.
   */
  listHistory(namespace: string, store: string, query: HistoryQuery): Promise<HistoryPage>;

  /**
   * sweep deletes what has outlived its use: expired verifications, keys and counters (stores
   * with native expiry leave those to it) and history older than the retention, in every store.
   */
  sweep(now: number, history: HistoryRetention): Promise<void>;
  /**
   * fraudBlocks lists which of these fraud-guard counters (a prefix, a country) are blocked now,
   * and until when (newly false).
   */
  fraudBlocks(keys: readonly string[], now: number): Promise<FraudBlock[]>;
  /**
   * fraudStart counts a start under each counter in the window's current bucket (a twelfth of the
   * window), then blocks, in the same atomic step, each counter whose starts over the window
   * before the current bucket (whose codes may still be entered) reach policy.minSample with fewer
   * than policy.minConversion of them approved (newly true for those this start blocked).
   * It answers every block among the keys. With publish, each block it makes goes to that store's
   * outbox in the same step.
   */
  fraudStart(keys: readonly string[], now: number, policy: FraudPolicy, publish?: FraudPublish): Promise<FraudBlock[]>;
  /** fraudApproved counts an approved verification under each counter. */
  fraudApproved(keys: readonly string[], now: number, policy: FraudPolicy): Promise<void>;
  /**
   * outboxClaim takes (or renews) the lease on a store's outbox for holder, for leaseMs, and
   * returns its oldest entries after afterSeq (at most limit; none for 0, a renewal), in seq
   * order; undefined while another holder has the lease, so that one deliverer at a time keeps
   * each user's events in order.
   */
  outboxClaim(
    namespace: string,
    store: string,
    holder: string,
    now: number,
    leaseMs: number,
    limit: number,
    afterSeq?: number,
  ): Promise<OutboxEntry[] | undefined>;
  /**
   * outboxSettle deletes the entries delivered (or given up) and records the failed deliveries'
   * retries, if holder still holds the lease (false: it lost it, and settled nothing; the new
   * holder delivers them again, at least once).
   */
  outboxSettle(namespace: string, store: string, holder: string, done: readonly number[], retry: readonly OutboxRetry[]): Promise<boolean>;
  /** outboxRelease ends holder's lease on a store's outbox (a deliverer that stops), so that another may take it at once. */
  outboxRelease(namespace: string, store: string, holder: string): Promise<void>;
  /**
   * putAlias names a verification by another key for ttlMs (the Twilio-compatible API finds the
   * verification pending for a number by it); a later put replaces it.
   */
  putAlias(namespace: string, store: string, alias: string, id: string, now: number, ttlMs: number): Promise<void>;
  /** getAlias is the verification an alias names, unless it expired. */
  getAlias(namespace: string, store: string, alias: string, now: number): Promise<string | undefined>;
  /** ping fails when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** StoreUnavailableError is a store that cannot be reached now (Redis down, SQLite busy); the HTTP layer answers 503. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly code = 'ERR_STORE_UNAVAILABLE';
}
