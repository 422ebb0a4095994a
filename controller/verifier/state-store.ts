import type { CodeMac, Delivery, Enrollment, HistoryEvent, LockoutState, RateDecision, VerificationRecord, VerificationStatus } from './types.js';

/** Idempotency ties a client's Idempotency-Key to one verification. */
export interface Idempotency {
  key: string;
  /** Hash of the request, so that a key reused for another request is refused. */
  fingerprint: string;
  ttlMs: number;
}

/** AttemptResult says whether a check may compare its code: only a counted attempt may. */
export interface AttemptResult {
  record: VerificationRecord;
  counted: boolean;
}

/** AttemptOutcome is a counted (or refused) check: whether the code matched and whether this check approved the verification. */
export interface AttemptOutcome {
  record: VerificationRecord;
  counted: boolean;
  matched: boolean;
  approved: boolean;
}

/** ResendResult is a resend's admission: the updated record, or why not. */
export type ResendResult =
  | { ok: true; record: VerificationRecord }
  | { ok: false; reason: 'not-pending' | 'max-sends'; record: VerificationRecord }
  | { ok: false; reason: 'cooldown'; record: VerificationRecord; retryAfterMs: number };

/** HistoryRetention bounds history per identity store, by count and by age. */
export interface HistoryRetention {
  maxEvents: number;
  maxAgeMs: number;
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
  /** createVerification stores a new verification; with an Idempotency-Key seen before it returns the earlier verification (replayed), or conflict when the key came with another request. */
  createVerification(record: VerificationRecord, idempotency?: Idempotency): Promise<{ outcome: 'created' | 'replayed' | 'conflict'; record: VerificationRecord }>;
  getVerification(namespace: string, store: string, id: string): Promise<VerificationRecord | undefined>;
  /** beginAttempt counts an attempt when the verification is pending, unexpired and has attempts left; an expired pending one becomes expired. */
  beginAttempt(namespace: string, store: string, id: string, now: number): Promise<AttemptResult | undefined>;
  /**
   * attempt is one check: it counts the attempt (as beginAttempt), and only when it counted,
   * compares with `matches`; a match approves the verification (compare-and-set, so one check
   * wins), and a miss on the last attempt ends it max_attempts_reached.
   */
  attempt(namespace: string, store: string, id: string, now: number, matches: (record: VerificationRecord) => boolean): Promise<AttemptOutcome | undefined>;
  /** finish moves a pending verification to a final status; undefined when it was no longer pending (another request won). */
  finish(namespace: string, store: string, id: string, status: Exclude<VerificationStatus, 'pending'>, failure?: { code: string; message: string }): Promise<VerificationRecord | undefined>;
  /** beginResend admits a resend (pending, unexpired, sends left, cooldown over) and installs the new code. */
  beginResend(namespace: string, store: string, id: string, now: number, code: CodeMac): Promise<ResendResult | undefined>;
  /** setDelivery records the latest delivery news of a verification; older news (by updatedAt) does not overwrite newer. */
  setDelivery(namespace: string, store: string, id: string, delivery: Delivery): Promise<void>;
  /** indexMessage remembers for ttlMs which verification a provider message belongs to, for delivery receipts. */
  indexMessage(provider: string, messageId: string, ref: MessageRef, now: number, ttlMs: number): Promise<void>;
  findMessage(provider: string, messageId: string): Promise<MessageRef | undefined>;

  getEnrollment(namespace: string, store: string, user: string): Promise<Enrollment | undefined>;
  putEnrollment(namespace: string, store: string, enrollment: Enrollment): Promise<void>;
  /** deleteEnrollment tells whether there was one. */
  deleteEnrollment(namespace: string, store: string, user: string): Promise<boolean>;

  getLockout(namespace: string, store: string, user: string, now: number): Promise<LockoutState>;
  /** recordFailure counts a consecutive failure; at the threshold the user is locked until now + duration (lockedNow says this call locked). */
  recordFailure(namespace: string, store: string, user: string, threshold: number, durationMs: number, now: number): Promise<LockoutState & { lockedNow: boolean }>;
  /** resetFailures clears the count after a success, unless the user is locked out at `now`. */
  resetFailures(namespace: string, store: string, user: string, now: number): Promise<void>;

  /** hitWindow counts one event in a fixed window of windowMs; refused beyond limit, with the time until the window ends. */
  hitWindow(key: string, limit: number, windowMs: number, now: number): Promise<RateDecision>;
  /** takeToken takes one token from a bucket refilled at perSecond up to burst. */
  takeToken(key: string, perSecond: number, burst: number, now: number): Promise<RateDecision>;

  addHistory(event: Omit<HistoryEvent, 'seq'>, retention: HistoryRetention): Promise<void>;
  /** listHistory returns newest first, events with seq below `before` when given. */
  listHistory(namespace: string, store: string, query: { user?: string; limit: number; before?: number }): Promise<HistoryEvent[]>;

  /** sweep deletes what has outlived its use (stores with native expiry do nothing). */
  sweep(now: number): Promise<void>;
  /** ping fails when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** StoreUnavailableError is a store that cannot be reached now (Redis down, SQLite busy); the HTTP layer answers 503. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly code = 'ERR_STORE_UNAVAILABLE';
}

/** attemptInSteps implements StateStore.attempt with beginAttempt and finish, for stores that cannot compare inside their own atomic step. */
export async function attemptInSteps(store: StateStore, namespace: string, storeName: string, id: string, now: number, matches: (record: VerificationRecord) => boolean): Promise<AttemptOutcome | undefined> {
  const begun = await store.beginAttempt(namespace, storeName, id, now);
  if (begun === undefined || !begun.counted) return begun === undefined ? undefined : { ...begun, matched: false, approved: false };
  const r = begun.record;
  if (matches(r)) {
    const approved = await store.finish(namespace, storeName, id, 'approved');
    return { record: approved ?? r, counted: true, matched: true, approved: approved !== undefined };
  }
  const ended = r.attempts >= r.maxAttempts ? await store.finish(namespace, storeName, id, 'max_attempts_reached') : undefined;
  return { record: ended ?? r, counted: true, matched: false, approved: false };
}
