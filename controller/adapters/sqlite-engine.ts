import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { macMatches } from '../verifier/code-hasher.ts';
import { bucketOf, FRAUD_WINDOW_BOUNDS, shouldBlock, type FraudBlock, type FraudPolicy } from '../core/fraud-guard.ts';
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
  OutboxBody,
  OutboxEntry,
  OutboxRetry,
  ProofSpend,
  QuotaDecision,
  ResendResult,
  SendQuota,
} from '../verifier/state-store.ts';
import {
  ENROLLMENT_CHANGED,
  REPLACEMENT_REFUSED,
  OUTBOX_KEEP_MS,
  attemptResult,
  isEnrollmentAsExpected,
  enrollmentOf,
  proofRefusal,
  replacementRefused,
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

/** How long a finished verification stays readable, and idempotency keys and message ids remembered. */
const KEEP_AFTER_EXPIRY_MS = 24 * 3_600_000;
/** How many events one page of history examines at most: filters that skip many end a page early, with a cursor. */
const HISTORY_SCAN = 5000;
/**
 * How many events one write trims at most, and one sweep step removes: after the retention is
 * lowered, the excess goes over several steps (each its own transaction) instead of holding the
 * store for one long delete.
 */
const TRIM_BATCH = 1000;
const SWEEP_BATCH = 10_000;
/** How long a lockout counter lives without a new failure (as the Redis store's key). */
const LOCKOUT_TTL_MS = 30 * 24 * 3_600_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS verifications (
  ns TEXT NOT NULL, store TEXT NOT NULL, id TEXT NOT NULL, keep_until INTEGER NOT NULL, record TEXT NOT NULL,
  PRIMARY KEY (ns, store, id));
CREATE INDEX IF NOT EXISTS verifications_keep ON verifications (keep_until);
CREATE TABLE IF NOT EXISTS idempotency (
  ns TEXT NOT NULL, store TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, id TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (ns, store, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  provider TEXT NOT NULL, message_id TEXT NOT NULL, ns TEXT NOT NULL, store TEXT NOT NULL, id TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (provider, message_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS enrollments (
  ns TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, record TEXT NOT NULL,
  PRIMARY KEY (ns, store, user)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lockouts (
  ns TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, failures INTEGER NOT NULL, locked_until INTEGER, updated_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (ns, store, user)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rate_windows (key TEXT PRIMARY KEY, window_start INTEGER NOT NULL, count INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rate_buckets (key TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fraud_counts (key TEXT NOT NULL, bucket INTEGER NOT NULL, starts INTEGER NOT NULL, approved INTEGER NOT NULL, PRIMARY KEY (key, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fraud_blocks (key TEXT PRIMARY KEY, until INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
  seq INTEGER PRIMARY KEY, ns TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, type TEXT NOT NULL,
  result TEXT NOT NULL, time INTEGER NOT NULL, client_ip TEXT NOT NULL, user_agent TEXT NOT NULL, verification_id TEXT);
CREATE INDEX IF NOT EXISTS history_store ON history (ns, store, seq);
CREATE INDEX IF NOT EXISTS history_user ON history (ns, store, user, seq);
CREATE INDEX IF NOT EXISTS history_time ON history (ns, store, time);
CREATE TABLE IF NOT EXISTS history_counts (ns TEXT NOT NULL, store TEXT NOT NULL, n INTEGER NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (ns, store)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, store TEXT NOT NULL, key TEXT NOT NULL, time INTEGER NOT NULL,
  body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS outbox_store ON outbox (ns, store, seq);
CREATE INDEX IF NOT EXISTS outbox_time ON outbox (time);
CREATE TABLE IF NOT EXISTS aliases (ns TEXT NOT NULL, store TEXT NOT NULL, alias TEXT NOT NULL, id TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (ns, store, alias)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox_leases (ns TEXT NOT NULL, store TEXT NOT NULL, holder TEXT NOT NULL, until INTEGER NOT NULL, PRIMARY KEY (ns, store)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
`;

type Row = Record<string, unknown>;

/** What each operation of a batch answers when another process held the lock past the busy timeout. */
const LOCKED: OpFailure = { name: 'StoreUnavailableError', message: 'the state database is locked by another process', code: 'SQLITE_BUSY' };

/** ENGINE_OPS are the engine's operations a batch may name: the StateStore's, run synchronously. */
export const ENGINE_OPS = [
  'createVerification',
  'getVerification',
  'attempt',
  'finish',
  'beginResend',
  'setDelivery',
  'recordSent',
  'findMessage',
  'getEnrollment',
  'enrolledAmong',
  'putEnrollment',
  'deleteEnrollment',
  'getLockout',
  'clearLockout',
  'addHistory',
  'listHistory',
  'sweep',
  'sweepHistory',
  'fraudBlocks',
  'fraudStart',
  'fraudApproved',
  'outboxClaim',
  'outboxSettle',
  'outboxRelease',
  'putAlias',
  'getAlias',
  'ping',
] as const;
export type EngineOp = (typeof ENGINE_OPS)[number];

/** SqliteEngineOptions configure one connection to the file. */
export interface SqliteEngineOptions {
  /** How long a write waits for a lock held by another connection before it fails as unavailable: the thread's connection always, the event loop's while it opens. */
  busyTimeoutMs?: number;
  /**
   * Which of the store's two connections this is. Neither checkpoints by itself (SQLite's own
   * checkpoints are off on both).
   *
   * - `event-loop`: once opened, never waits for a lock (a batch that finds the file locked answers
   *   undefined from runBatchUnlessLocked), and its commits only append to the WAL. Closed while
   *   the thread's connection is open, it leaves the WAL to that one.
   * - `thread`: waits for a lock up to busyTimeoutMs, and copies the WAL into the file when asked
   *   (checkpoint(), which then starts the WAL over). The last connection to close copies it too.
   */
  role: 'event-loop' | 'thread';
}

/** BatchOp is one operation of a batch, as it crosses to the SQLite thread. */
export interface BatchOp {
  op: EngineOp;
  args: unknown[];
}

/** OpFailure is a failed operation's error, as plain data (errors lose their class crossing threads). */
export interface OpFailure {
  name: string;
  message: string;
  code?: string;
}

/** OpResult is one operation's answer, in the order of the batch. */
export type OpResult = { ok: true; value: unknown } | { ok: false; error: OpFailure };

/**
 * SqliteEngine is the embedded store's SQL, synchronous: one SQLite file in WAL mode, durable
 * across restarts. runBatch runs a batch of operations in one BEGIN IMMEDIATE transaction (group
 * commit); when one fails, the batch runs again with each in a savepoint of its own, so that the
 * failing one rolls back alone. Every deciding operation is therefore atomic even when several
 * processes share the file, and a lock held longer than the busy timeout fails the whole batch as
 * unavailable. SqliteStore runs it on the event loop and on a thread of its own (sqlite-worker.ts).
 */
export class SqliteEngine {
  private readonly db: Database.Database;
  /** Prepared statements by SQL: better-sqlite3 compiles on every prepare, so they are kept. */
  private readonly statements = new Map<string, Database.Statement>();
  private readonly batch: (ops: readonly BatchOp[]) => OpResult[];
  /**
   * The AUTOINCREMENT counter of a history made by an earlier version (0 for a file made by this
   * one), read once: past it, only this version's own inserts move it, and the table's max seq and
   * each store's last seq already follow those (appendHistory).
   */
  private readonly legacyHistorySeq: number;

  constructor(file: string, options: SqliteEngineOptions) {
    keepPrivate(file);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 2000}`);
    this.db.exec(SCHEMA);
    // Files made before lockouts had updated_at: their counters read as a month old, so the
    // upgrade forgets every failure count of a user who is not locked out.
    if (!(this.db.pragma('table_info(lockouts)') as { name: string }[]).some((c) => c.name === 'updated_at')) {
      this.db.exec('ALTER TABLE lockouts ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0');
    }
    // Files made before the audit trail: their events read as the user's, with no role.
    const historyColumns = new Set((this.db.pragma('table_info(history)') as { name: string }[]).map((c) => c.name));
    if (!historyColumns.has('actor')) this.db.exec("ALTER TABLE history ADD COLUMN actor TEXT NOT NULL DEFAULT 'user'");
    if (!historyColumns.has('role')) this.db.exec('ALTER TABLE history ADD COLUMN role TEXT');
    if (!historyColumns.has('detail')) this.db.exec('ALTER TABLE history ADD COLUMN detail TEXT');
    // This version's upgrades, when the file needs one: in one transaction, each step looking again
    // (another process may be upgrading the same file), so that opening an upgraded file takes no lock.
    const lacksLastSeq = (): boolean => !(this.db.pragma('table_info(history_counts)') as { name: string }[]).some((c) => c.name === 'last_seq');
    const hasIndex = (name: string): boolean => this.db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?").get(name) !== undefined;
    if (lacksLastSeq() || !hasIndex('history_staff') || hasIndex('history_actor') || hasIndex('history_all_time')) {
      this.db
        .transaction(() => {
          // Files made before history_counts kept each store's last seq (appendHistory).
          if (lacksLastSeq()) this.db.exec('ALTER TABLE history_counts ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0');
          // The actor index holds the events of staff and the system, not the users' own (most
          // events): a user's own event is one index page fewer to write, and listing them walks the
          // store's events.
          this.db.exec("CREATE INDEX IF NOT EXISTS history_staff ON history (ns, store, actor, seq) WHERE actor <> 'user'; DROP INDEX IF EXISTS history_actor");
          // Files made before the sweep went store by store (sweepHistory): every store with events
          // gets its count first, then the index of all events by time goes (one page fewer per event).
          if (hasIndex('history_all_time')) {
            this.db.exec(
              'INSERT OR IGNORE INTO history_counts (ns, store, n, last_seq) SELECT ns, store, count(*), max(seq) FROM history GROUP BY ns, store; DROP INDEX history_all_time',
            );
          }
        })
        .immediate();
    }
    this.legacyHistorySeq = (this.get("SELECT seq FROM sqlite_sequence WHERE name = 'history'")?.seq as number | undefined) ?? 0;
    // Opened and upgraded above like any connection; from here on, as asked.
    if (options.role === 'event-loop') this.db.pragma('busy_timeout = 0');
    this.db.pragma('wal_autocheckpoint = 0');
    // An argument left out travels as null (JSON has no undefined); no operation takes null itself.
    const run = (op: BatchOp): unknown => {
      if (!ENGINE_OPS.includes(op.op)) throw new Error(`unknown store operation ${String(op.op)}`);
      return (this[op.op] as (...args: unknown[]) => unknown)(...op.args.map((a) => a ?? undefined));
    };
    // The whole batch in one transaction. When an operation throws, the batch is rolled back and
    // run again with each operation in a savepoint of its own, so that only the failing one fails.
    const whole = this.db.transaction((ops: readonly BatchOp[]) => ops.map((op): OpResult => ({ ok: true, value: run(op) })));
    const savepoint = this.db.transaction(run);
    const oneByOne = this.db.transaction((ops: readonly BatchOp[]) =>
      ops.map((op): OpResult => {
        try {
          return { ok: true, value: savepoint(op) };
        } catch (err) {
          return { ok: false, error: failureOf(err) };
        }
      }),
    );
    this.batch = (ops) => {
      try {
        return whole.immediate(ops);
      } catch (err) {
        if (isBusy(err)) throw err;
        return oneByOne.immediate(ops);
      }
    };
  }

  /** runBatch runs ops in one transaction and answers each one's result, in order; a lock that outlasts the busy timeout fails them all. */
  runBatch(ops: readonly BatchOp[]): OpResult[] {
    return this.runBatchUnlessLocked(ops) ?? ops.map(() => ({ ok: false, error: LOCKED }));
  }

  /**
   * runBatchUnlessLocked is runBatch for a connection that does not wait for locks: when another
   * connection holds the write lock, nothing of the batch ran and the answer is undefined.
   */
  runBatchUnlessLocked(ops: readonly BatchOp[]): OpResult[] | undefined {
    try {
      return this.batch(ops);
    } catch (err) {
      if (isBusy(err)) return undefined;
      const failure = failureOf(err);
      return ops.map(() => ({ ok: false, error: failure }));
    }
  }

  /**
   * checkpoint copies what the WAL holds into the file as far as readers allow (PASSIVE). When it
   * copied everything, the next write starts the WAL over and syncs its new header to disk: this
   * connection makes that write itself (the count of checkpoints), so that the sync is its own and
   * never that of a connection on the event loop.
   */
  checkpoint(): void {
    const [result] = this.db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    if (result === undefined || result.busy !== 0 || result.log !== result.checkpointed) return;
    this.exec('INSERT INTO checkpoints (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1');
  }

  private statement(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (st === undefined) this.statements.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  private get(sql: string, ...params: unknown[]): Row | undefined {
    return this.statement(sql).get(...params) as Row | undefined;
  }

  private exec(sql: string, ...params: unknown[]): number {
    return this.statement(sql).run(...params).changes;
  }

  private read(ns: string, store: string, id: string): VerificationRecord | undefined {
    const row = this.get('SELECT record FROM verifications WHERE ns = ? AND store = ? AND id = ?', ns, store, id);
    return row === undefined ? undefined : (JSON.parse(row.record as string) as VerificationRecord);
  }

  private insert(r: VerificationRecord): void {
    this.exec(
      'INSERT INTO verifications (ns, store, id, keep_until, record) VALUES (?, ?, ?, ?, ?)',
      r.namespace,
      r.store,
      r.id,
      r.expiresAt + KEEP_AFTER_EXPIRY_MS,
      JSON.stringify(r),
    );
  }

  /** write updates an existing record (its expiry, hence keep_until, never changes). */
  private write(r: VerificationRecord): void {
    this.exec('UPDATE verifications SET record = ? WHERE ns = ? AND store = ? AND id = ?', JSON.stringify(r), r.namespace, r.store, r.id);
  }

  createVerification(
    record: VerificationRecord,
    idempotency: Idempotency | undefined,
    quotas: readonly SendQuota[],
    proof?: ProofSpend,
    enrolled?: EnrollmentExpected,
  ): CreateResult {
    if (enrolled !== undefined) {
      const enrollment = this.getEnrollment(record.namespace, record.store, record.user);
      if (!isEnrollmentAsExpected(enrollment, enrolled)) return { outcome: 'enrollment-differs', enrollment };
    }
    if (idempotency !== undefined) {
      const row = this.get(
        'SELECT fingerprint, id FROM idempotency WHERE ns = ? AND store = ? AND key = ? AND expires_at > ?',
        record.namespace,
        record.store,
        idempotency.key,
        record.createdAt,
      );
      const earlier = row === undefined ? undefined : this.read(record.namespace, record.store, row.id as string);
      if (row !== undefined && earlier !== undefined)
        return { outcome: row.fingerprint === idempotency.fingerprint ? 'replayed' : 'conflict', record: earlier };
    }
    const spent = proof === undefined ? undefined : this.read(record.namespace, record.store, proof.id);
    if (proof !== undefined) {
      const refusal = proofRefusal(spent, { user: record.user, number: record.replaces }, proof);
      if (refusal !== undefined) return { outcome: 'proof-refused', reason: refusal };
    }
    const quota = this.takeQuota(quotas, record.createdAt);
    if (!quota.ok) return { outcome: 'limited', quota: quota.quota, retryAfterMs: quota.retryAfterMs };
    if (spent !== undefined) this.write({ ...spent, proofUsed: true });
    if (idempotency !== undefined) {
      this.exec(
        'INSERT OR REPLACE INTO idempotency (ns, store, key, fingerprint, id, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
        record.namespace,
        record.store,
        idempotency.key,
        idempotency.fingerprint,
        record.id,
        record.createdAt + idempotency.ttlMs,
      );
    }
    this.insert(record);
    return { outcome: 'created', record };
  }

  getVerification(namespace: string, store: string, id: string): VerificationRecord | undefined {
    return this.read(namespace, store, id);
  }

  attempt(namespace: string, store: string, id: string, now: number, candidates: readonly CodeMac[], audit?: AttemptAudit): AttemptOutcome | undefined {
    // Lockout, count, compare, end, enroll and history in one transaction: the whole check in one step.
    const r = this.read(namespace, store, id);
    if (r === undefined) return undefined;
    const refused = (): AttemptOutcome => ({ record: r, counted: false, approved: false });
    if (r.status !== 'pending') return refused();
    const auth = r.purpose === 'authenticate';
    const lock = auth ? this.lockoutRow(namespace, store, r.user, now) : undefined;
    if (lock !== undefined && lock.lockedUntil !== null) return { ...refused(), lockedUntil: lock.lockedUntil };
    if (now >= r.expiresAt) {
      r.status = 'expired';
      this.write(r);
      return refused();
    }
    if (r.attempts >= r.maxAttempts) return refused();
    const approved = macMatches(r.code, candidates);
    const current = approved && r.purpose !== 'helpdesk' ? this.getEnrollment(namespace, store, r.user) : undefined;
    if (approved && auth && r.numberFrom !== 'directory' && current?.to !== r.to) {
      // The number this code went to is no longer the user's factor (unenrolled or replaced since).
      return this.cancel(r, ENROLLMENT_CHANGED, refused);
    }
    // Another number enrolled since this enrollment started, and it may not replace it.
    if (approved && replacementRefused(r, current)) return this.cancel(r, REPLACEMENT_REFUSED, refused);
    r.attempts += 1;
    if (approved) {
      r.status = 'approved';
      r.approvedAt = now;
    } else if (r.attempts >= r.maxAttempts) r.status = 'max_attempts_reached';
    this.write(r);
    if (approved && r.purpose === 'enroll') this.writeEnrollment(namespace, store, enrollmentOf(r, now));
    const outcome = attemptResult(approved, r);
    const event = audit?.events[outcome];
    if (event !== undefined) {
      const numbers =
        approved && r.purpose === 'enroll' ? { numbers: { old: current === undefined ? null : (current.masked ?? null), new: r.maskedTo ?? null } } : {};
      this.record({ ...event, ...numbers }, audit!.retention, audit!.publish?.includes(outcome) === true ? { outcome } : undefined);
    }
    if (!auth) return { record: r, counted: true, approved };
    if (approved) {
      // Not locked (checked above): a success clears the consecutive failures.
      this.exec('DELETE FROM lockouts WHERE ns = ? AND store = ? AND user = ?', namespace, store, r.user);
      return { record: r, counted: true, approved, lockedNow: false };
    }
    const failures = lock!.failures + 1;
    const lockedNow = failures >= r.lockout.threshold;
    this.exec(
      'INSERT INTO lockouts (ns, store, user, failures, locked_until, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ns, store, user) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until, updated_at = excluded.updated_at',
      namespace,
      store,
      r.user,
      failures,
      lockedNow ? now + r.lockout.durationMs : null,
      now,
    );
    const locked = audit?.events.locked;
    if (lockedNow && locked !== undefined) {
      this.record(
        locked,
        audit!.retention,
        audit!.publish?.includes('locked') === true ? { outcome: 'locked', lockedUntil: now + r.lockout.durationMs } : undefined,
      );
    }
    return { record: r, counted: true, approved, lockedNow };
  }

  /** cancel ends a pending verification canceled with a failure, uncounted. */
  private cancel(r: VerificationRecord, failure: { code: string; message: string }, refused: () => AttemptOutcome): AttemptOutcome {
    r.status = 'canceled';
    r.failure = { ...failure };
    this.write(r);
    return refused();
  }

  finish(
    namespace: string,
    store: string,
    id: string,
    status: Exclude<VerificationStatus, 'pending'>,
    failure?: { code: string; message: string },
    approvedAt?: number,
    audit?: AuditWrite,
  ): VerificationRecord | undefined {
    const r = this.read(namespace, store, id);
    if (r === undefined || r.status !== 'pending') return undefined;
    r.status = status;
    if (failure !== undefined) r.failure = failure;
    if (status === 'approved' && approvedAt !== undefined) r.approvedAt = approvedAt;
    this.write(r);
    if (audit !== undefined) this.record(audit.event, audit.retention, audit.publish === true ? {} : undefined);
    return r;
  }

  beginResend(namespace: string, store: string, id: string, now: number, code: CodeMac, quotas: readonly SendQuota[]): ResendResult | undefined {
    const r = this.read(namespace, store, id);
    if (r === undefined) return undefined;
    if (r.status === 'pending' && now >= r.expiresAt) {
      r.status = 'expired';
      this.write(r);
    }
    const refusal = resendRefusal(r, now);
    if (refusal?.reason === 'cooldown') return { ok: false, reason: 'cooldown', record: r, retryAfterMs: refusal.retryAfterMs };
    if (refusal !== undefined) return { ok: false, reason: refusal.reason, record: r };
    const quota = this.takeQuota(quotas, now);
    if (!quota.ok) return { ok: false, reason: 'quota', record: r, quota: quota.quota, retryAfterMs: quota.retryAfterMs };
    r.sends += 1;
    r.lastSentAt = now;
    r.code = code;
    r.delivery = { status: 'sending', updatedAt: now };
    this.write(r);
    return { ok: true, record: r };
  }

  setDelivery(namespace: string, store: string, id: string, delivery: Delivery): void {
    // In place, with SQLite's JSON functions: one statement, no read. A later status is never
    // overwritten by an earlier one; news of a message (a receipt) applies only while that message
    // is the one recorded (not during a resend, nor after it), and never undoes its final status
    // (delivered, undelivered, failed) with an earlier stage arriving late or replayed.
    this.exec(
      `UPDATE verifications SET record = json_set(record, '$.delivery', json(?)) WHERE ns = ? AND store = ? AND id = ? AND json_extract(record, '$.delivery.updatedAt') <= ?
       AND (? IS NULL OR json_extract(record, '$.delivery.messageId') = ?)
       AND NOT (json_extract(record, '$.delivery.messageId') IS ? AND json_extract(record, '$.delivery.status') IN ('delivered', 'undelivered', 'failed') AND ? IN ('queued', 'sending', 'sent'))`,
      JSON.stringify(delivery),
      namespace,
      store,
      id,
      delivery.updatedAt,
      delivery.messageId ?? null,
      delivery.messageId ?? null,
      delivery.messageId ?? null,
      delivery.status,
    );
  }

  recordSent(ref: MessageRef, provider: string, delivery: Delivery & { messageId: string }, now: number, ttlMs: number): void {
    // The send's own record names its message: only newer news holds it back.
    this.exec(
      "UPDATE verifications SET record = json_set(record, '$.delivery', json(?)) WHERE ns = ? AND store = ? AND id = ? AND json_extract(record, '$.delivery.updatedAt') <= ?",
      JSON.stringify(delivery),
      ref.namespace,
      ref.store,
      ref.id,
      delivery.updatedAt,
    );
    this.exec(
      'INSERT OR REPLACE INTO messages (provider, message_id, ns, store, id, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      provider,
      delivery.messageId,
      ref.namespace,
      ref.store,
      ref.id,
      now + ttlMs,
    );
  }

  findMessage(provider: string, messageId: string, now: number): MessageRef | undefined {
    // As Redis' key expiry: an expired index entry is gone, swept or not.
    const row = this.get('SELECT ns, store, id FROM messages WHERE provider = ? AND message_id = ? AND expires_at > ?', provider, messageId, now);
    return row === undefined ? undefined : { namespace: row.ns as string, store: row.store as string, id: row.id as string };
  }

  getEnrollment(namespace: string, store: string, user: string): Enrollment | undefined {
    const row = this.get('SELECT record FROM enrollments WHERE ns = ? AND store = ? AND user = ?', namespace, store, user);
    return row === undefined ? undefined : (JSON.parse(row.record as string) as Enrollment);
  }

  enrolledAmong(namespace: string, store: string, users: readonly string[]): string[] {
    const out: string[] = [];
    // In chunks, within SQLite's limit on bound parameters.
    for (let i = 0; i < users.length; i += 500) {
      const chunk = users.slice(i, i + 500);
      const rows = this.statement(`SELECT user FROM enrollments WHERE ns = ? AND store = ? AND user IN (${chunk.map(() => '?').join(', ')})`).all(
        namespace,
        store,
        ...chunk,
      ) as Row[];
      for (const row of rows) out.push(row.user as string);
    }
    return out;
  }

  putEnrollment(namespace: string, store: string, enrollment: Enrollment): void {
    return this.writeEnrollment(namespace, store, enrollment);
  }

  private writeEnrollment(namespace: string, store: string, enrollment: Enrollment): void {
    this.exec(
      'INSERT INTO enrollments (ns, store, user, record) VALUES (?, ?, ?, ?) ON CONFLICT (ns, store, user) DO UPDATE SET record = excluded.record',
      namespace,
      store,
      enrollment.user,
      JSON.stringify(enrollment),
    );
  }

  deleteEnrollment(namespace: string, store: string, user: string, audit?: AuditWrite, proof?: ProofSpend): DeleteResult {
    const current = this.getEnrollment(namespace, store, user);
    if (current === undefined) return { outcome: 'none' };
    if (proof !== undefined) {
      const spent = this.read(namespace, store, proof.id);
      const refusal = proofRefusal(spent, { user, number: current.to }, proof);
      if (refusal !== undefined) return { outcome: 'proof-refused', reason: refusal };
      this.write({ ...spent!, proofUsed: true });
    }
    this.exec('DELETE FROM enrollments WHERE ns = ? AND store = ? AND user = ?', namespace, store, user);
    if (audit !== undefined)
      this.record({ ...audit.event, numbers: { old: current.masked ?? null, new: null } }, audit.retention, audit.publish === true ? {} : undefined);
    return { outcome: 'deleted', enrollment: current };
  }

  private lockoutRow(ns: string, store: string, user: string, now: number): LockoutState {
    const row = this.get('SELECT failures, locked_until, updated_at FROM lockouts WHERE ns = ? AND store = ? AND user = ?', ns, store, user);
    if (row === undefined) return { failures: 0, lockedUntil: null };
    const until = row.locked_until as number | null;
    if (until !== null && until <= now) return { failures: 0, lockedUntil: null }; // an expired lockout starts a new count
    // Failures a month old are forgotten, as the Redis store's key expires.
    if (until === null && (row.updated_at as number) + LOCKOUT_TTL_MS <= now) return { failures: 0, lockedUntil: null };
    return { failures: row.failures as number, lockedUntil: until };
  }

  getLockout(namespace: string, store: string, user: string, now: number): LockoutState {
    return this.lockoutRow(namespace, store, user, now);
  }

  clearLockout(namespace: string, store: string, user: string, now: number, audit: AuditWrite): boolean {
    const locked = this.lockoutRow(namespace, store, user, now).lockedUntil !== null;
    this.exec('DELETE FROM lockouts WHERE ns = ? AND store = ? AND user = ?', namespace, store, user);
    this.record({ ...audit.event, result: 'success' }, audit.retention, audit.publish === true ? {} : undefined);
    return locked;
  }

  /** takeQuota checks every quota, then takes from all of them or none (inside the caller's transaction): one read and one write however many quotas. */
  private takeQuota(quotas: readonly SendQuota[], now: number): QuotaDecision {
    if (quotas.length === 0) return { ok: true };
    const windows = quotas.filter((q) => q.kind === 'window');
    const buckets = quotas.filter((q) => q.kind === 'bucket');
    const windowRows = this.rows(
      'rate_windows',
      'key, window_start, count',
      windows.map((q) => q.key),
    );
    const bucketRows = this.rows(
      'rate_buckets',
      'key, tokens, updated_at',
      buckets.map((q) => q.key),
    );
    const windowTakes: unknown[] = [];
    const bucketTakes: unknown[] = [];
    for (const q of quotas) {
      if (q.kind === 'window') {
        const start = Math.floor(now / q.windowMs) * q.windowMs;
        const row = windowRows.get(q.key);
        // A take stamped in an earlier window than the stored one (its request read the clock
        // before a later one reached the store) counts in the stored window: it never resets it.
        const stored = row === undefined ? undefined : (row.window_start as number);
        const window = stored !== undefined && stored > start ? stored : start;
        const count = stored === window ? (row!.count as number) : 0;
        if (count >= q.limit) return { ok: false, quota: q.name, retryAfterMs: Math.max(0, window + q.windowMs - now) };
        windowTakes.push(q.key, window, count + 1);
      } else {
        const row = bucketRows.get(q.key);
        const tokens =
          row === undefined ? q.burst : Math.min(q.burst, (row.tokens as number) + (Math.max(0, now - (row.updated_at as number)) / 1000) * q.perSecond);
        if (tokens < 1) return { ok: false, quota: q.name, retryAfterMs: Math.ceil(((1 - tokens) / q.perSecond) * 1000) };
        bucketTakes.push(q.key, tokens - 1, now);
      }
    }
    if (windowTakes.length > 0)
      this.exec(
        `INSERT INTO rate_windows (key, window_start, count) VALUES ${values(windows.length)} ON CONFLICT (key) DO UPDATE SET window_start = excluded.window_start, count = excluded.count`,
        ...windowTakes,
      );
    if (bucketTakes.length > 0)
      this.exec(
        `INSERT INTO rate_buckets (key, tokens, updated_at) VALUES ${values(buckets.length)} ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at`,
        ...bucketTakes,
      );
    return { ok: true };
  }

  /** rows reads the rows of a keyed table for several keys at once, by key. */
  private rows(table: string, columns: string, keys: readonly string[]): Map<string, Row> {
    if (keys.length === 0) return new Map();
    const found = this.statement(`SELECT ${columns} FROM ${table} WHERE key IN (${keys.map(() => '?').join(', ')})`).all(...keys) as Row[];
    return new Map(found.map((r) => [r.key as string, r]));
  }

  addHistory(event: Omit<HistoryEvent, 'seq'>, retention: HistoryRetention): void {
    this.record(event, retention, undefined);
  }

  /**
   * record appends a history event and, with publish (the check's outcome that recorded it, if
   * any), puts it in the store's outbox too, in the caller's transaction.
   */
  private record(
    event: Omit<HistoryEvent, 'seq'>,
    retention: HistoryRetention,
    publish: Omit<OutboxBody & { kind: 'history' }, 'kind' | 'event'> | undefined,
  ): void {
    const seq = this.appendHistory(event, retention);
    if (publish !== undefined) {
      // As historyRow reads it back.
      const stored = { ...event, seq, actor: event.actor ?? 'user', role: event.role ?? null };
      this.publish(event.namespace, event.store, event.user, event.time, { kind: 'history', event: stored, ...publish });
    }
  }

  /** publish puts an entry in a store's outbox. */
  private publish(ns: string, store: string, key: string, time: number, body: OutboxBody): void {
    this.exec('INSERT INTO outbox (ns, store, key, time, body) VALUES (?, ?, ?, ?, ?)', ns, store, key, time, JSON.stringify(body));
  }

  /** appendHistory appends an event and trims the store's history; it answers the event's seq. */
  private appendHistory(event: Omit<HistoryEvent, 'seq'>, retention: HistoryRetention): number {
    // Bounded by age (a range on the time index) and by count (a per-store count, so that only the
    // few oldest rows are touched): both cheap however long the history is.
    const { namespace: ns, store } = event;
    const detail =
      event.reason !== undefined || event.numbers !== undefined || event.exhausted !== undefined
        ? JSON.stringify({ reason: event.reason, numbers: event.numbers, exhausted: event.exhausted })
        : null;
    // A seq above every event's, above the store's last one, and above the AUTOINCREMENT counter
    // of a history made by an earlier version: never one this store gave before, even after its
    // newest events were swept (which AUTOINCREMENT alone would ensure at the cost of writing its
    // counter's page at every event).
    const row = this.get('SELECT n, last_seq FROM history_counts WHERE ns = ? AND store = ?', ns, store);
    const top = (this.get('SELECT max(seq) AS top FROM history')!.top as number | null) ?? 0;
    const seq = Math.max(top, row === undefined ? 0 : (row.last_seq as number), this.legacyHistorySeq) + 1;
    this.exec(
      'INSERT INTO history (seq, ns, store, user, type, result, time, client_ip, user_agent, verification_id, actor, role, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      seq,
      ns,
      store,
      event.user,
      event.type,
      event.result,
      event.time,
      event.clientIp,
      event.userAgent,
      event.verificationId ?? null,
      event.actor ?? 'user',
      event.role ?? null,
      detail,
    );
    // Looked for before deleting, since aged events are rare: the DELETE costs about seven times
    // the lookup even when it finds nothing, and profiles showed SQLite preparing it again on
    // writes (the engine's approving check went from about 87 to 68 µs).
    const minTime = event.time - retention.maxAgeMs;
    const aged =
      this.get('SELECT 1 AS aged FROM history WHERE ns = ? AND store = ? AND time < ? LIMIT 1', ns, store, minTime) === undefined
        ? 0
        : this.exec(
            'DELETE FROM history WHERE seq IN (SELECT seq FROM history WHERE ns = ? AND store = ? AND time < ? LIMIT ?)',
            ns,
            store,
            minTime,
            TRIM_BATCH,
          );
    let n =
      row === undefined ? (this.get('SELECT count(*) AS n FROM history WHERE ns = ? AND store = ?', ns, store)!.n as number) : (row.n as number) + 1 - aged;
    if (n > retention.maxEvents) {
      n -= this.exec(
        'DELETE FROM history WHERE seq IN (SELECT seq FROM history WHERE ns = ? AND store = ? ORDER BY seq ASC LIMIT ?)',
        ns,
        store,
        Math.min(TRIM_BATCH, n - retention.maxEvents),
      );
    }
    this.exec(
      'INSERT INTO history_counts (ns, store, n, last_seq) VALUES (?, ?, ?, ?) ON CONFLICT (ns, store) DO UPDATE SET n = excluded.n, last_seq = excluded.last_seq',
      ns,
      store,
      n,
      seq,
    );
    return seq;
  }

  listHistory(namespace: string, store: string, query: HistoryQuery): HistoryPage {
    // The seq index of the store (or of the user, or the actor) is walked newest first; the other
    // filters are applied to at most HISTORY_SCAN events of it per page.
    const where = ['ns = ?', 'store = ?', 'seq < ?'];
    const params: unknown[] = [namespace, store, query.before ?? Number.MAX_SAFE_INTEGER];
    if (query.user !== undefined) {
      where.push('user = ?');
      params.push(query.user);
    }
    // Staff and system events by the actor index; a user's own, as the other filters, on the scan.
    if (query.actor !== undefined && query.actor !== 'user') {
      where.push('actor = ?', "actor <> 'user'");
      params.push(query.actor);
    }
    const scanned = this.statement(
      `SELECT seq, ns, store, user, type, result, time, client_ip, user_agent, verification_id, actor, role, detail FROM history WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`,
    ).all(...params, HISTORY_SCAN) as Row[];
    const events: HistoryEvent[] = [];
    for (const [i, r] of scanned.entries()) {
      const time = r.time as number;
      if (
        (query.type === undefined || r.type === query.type) &&
        (query.actor !== 'user' || r.actor === 'user') &&
        (query.since === undefined || time >= query.since) &&
        (query.until === undefined || time < query.until)
      ) {
        events.push(historyRow(r));
        if (events.length === query.limit) return { events, next: i === scanned.length - 1 && scanned.length < HISTORY_SCAN ? null : (r.seq as number) };
      }
    }
    // Times need not follow seqs (replicas, concurrent requests): the scan goes on to the end, a page at a time.
    return { events, next: scanned.length < HISTORY_SCAN ? null : (scanned[scanned.length - 1]!.seq as number) };
  }

  /** sweep deletes what has outlived its use, but history (see sweepHistory). */
  sweep(now: number): void {
    this.exec('DELETE FROM verifications WHERE keep_until < ?', now);
    this.exec('DELETE FROM idempotency WHERE expires_at < ?', now);
    this.exec('DELETE FROM messages WHERE expires_at < ?', now);
    this.exec('DELETE FROM rate_windows WHERE window_start < ?', now - KEEP_AFTER_EXPIRY_MS);
    this.exec('DELETE FROM rate_buckets WHERE updated_at < ?', now - KEEP_AFTER_EXPIRY_MS);
    // Buckets older than the longest fraud-guard window (and an hour of margin) count in no window.
    this.exec('DELETE FROM fraud_counts WHERE bucket < ?', now - FRAUD_WINDOW_BOUNDS.max - 3_600_000);
    this.exec('DELETE FROM fraud_blocks WHERE until < ?', now);
    this.exec('DELETE FROM lockouts WHERE updated_at <= ? AND (locked_until IS NULL OR locked_until <= ?)', now - LOCKOUT_TTL_MS, now);
    this.exec('DELETE FROM outbox WHERE time < ?', now - OUTBOX_KEEP_MS);
    this.exec('DELETE FROM outbox_leases WHERE until < ?', now);
    this.exec('DELETE FROM aliases WHERE expires_at < ?', now);
  }

  putAlias(namespace: string, store: string, alias: string, id: string, now: number, ttlMs: number): void {
    this.exec('INSERT OR REPLACE INTO aliases (ns, store, alias, id, expires_at) VALUES (?, ?, ?, ?, ?)', namespace, store, alias, id, now + ttlMs);
  }

  getAlias(namespace: string, store: string, alias: string, now: number): string | undefined {
    const row = this.get('SELECT id FROM aliases WHERE ns = ? AND store = ? AND alias = ? AND expires_at > ?', namespace, store, alias, now);
    return row === undefined ? undefined : (row.id as string);
  }

  outboxClaim(namespace: string, store: string, holder: string, now: number, leaseMs: number, limit: number, afterSeq = 0): OutboxEntry[] | undefined {
    const lease = this.get('SELECT holder, until FROM outbox_leases WHERE ns = ? AND store = ?', namespace, store);
    if (lease !== undefined && lease.holder !== holder && (lease.until as number) > now) return undefined;
    this.exec('INSERT OR REPLACE INTO outbox_leases (ns, store, holder, until) VALUES (?, ?, ?, ?)', namespace, store, holder, now + leaseMs);
    const rows = this.statement(
      'SELECT seq, key, time, body, attempts, next_at FROM outbox WHERE ns = ? AND store = ? AND seq > ? ORDER BY seq ASC LIMIT ?',
    ).all(namespace, store, afterSeq, limit) as Row[];
    return rows.map((r) => ({
      seq: r.seq as number,
      namespace,
      store,
      key: r.key as string,
      time: r.time as number,
      attempts: r.attempts as number,
      nextAt: r.next_at as number,
      body: JSON.parse(r.body as string) as OutboxBody,
    }));
  }

  outboxSettle(namespace: string, store: string, holder: string, done: readonly number[], retry: readonly OutboxRetry[]): boolean {
    if (this.get('SELECT holder FROM outbox_leases WHERE ns = ? AND store = ?', namespace, store)?.holder !== holder) return false;
    for (const seq of done) this.exec('DELETE FROM outbox WHERE seq = ? AND ns = ? AND store = ?', seq, namespace, store);
    for (const r of retry)
      this.exec('UPDATE outbox SET attempts = ?, next_at = ? WHERE seq = ? AND ns = ? AND store = ?', r.attempts, r.nextAt, r.seq, namespace, store);
    return true;
  }

  outboxRelease(namespace: string, store: string, holder: string): void {
    this.exec('DELETE FROM outbox_leases WHERE ns = ? AND store = ? AND holder = ?', namespace, store, holder);
  }

  fraudBlocks(keys: readonly string[], now: number): FraudBlock[] {
    if (keys.length === 0) return [];
    const rows = this.statement(`SELECT key, until FROM fraud_blocks WHERE until > ? AND key IN (${keys.map(() => '?').join(', ')})`).all(
      now,
      ...keys,
    ) as Row[];
    return rows.map((r) => ({ key: r.key as string, until: r.until as number, newly: false })).sort((a, b) => a.key.localeCompare(b.key));
  }

  fraudStart(keys: readonly string[], now: number, policy: FraudPolicy, publish?: FraudPublish): FraudBlock[] {
    const blocks = this.fraudCount(keys, now, policy, 'starts');
    if (publish !== undefined) {
      for (const b of blocks) {
        if (b.newly) this.publish(publish.namespace, publish.store, b.key, now, { kind: 'fraud', key: b.key, until: b.until, enforced: publish.enforced });
      }
    }
    return blocks;
  }

  fraudApproved(keys: readonly string[], now: number, policy: FraudPolicy): void {
    this.fraudCount(keys, now, policy, 'approved');
  }

  /** fraudCount adds one to a column of each counter's current bucket; after a start, it blocks the counters whose conversion fell. */
  private fraudCount(keys: readonly string[], now: number, policy: FraudPolicy, column: 'starts' | 'approved'): FraudBlock[] {
    const bucket = bucketOf(now, policy.windowMs);
    for (const key of keys) {
      this.exec(
        `INSERT INTO fraud_counts (key, bucket, starts, approved) VALUES (?, ?, ?, ?) ON CONFLICT (key, bucket) DO UPDATE SET ${column} = ${column} + 1`,
        key,
        bucket,
        column === 'starts' ? 1 : 0,
        column === 'approved' ? 1 : 0,
      );
    }
    if (column === 'approved') return [];
    const blocks = new Map(this.fraudBlocks(keys, now).map((b) => [b.key, b]));
    for (const key of keys) {
      if (blocks.has(key)) continue;
      // Starts of the current bucket are not judged yet (their codes may still be entered), the approvals all are.
      const sums = this.statement(
        'SELECT COALESCE(SUM(CASE WHEN bucket < ? THEN starts ELSE 0 END), 0) AS s, COALESCE(SUM(approved), 0) AS a FROM fraud_counts WHERE key = ? AND bucket > ?',
      ).get(bucket, key, bucket - policy.windowMs) as Row;
      if (!shouldBlock(sums.s as number, sums.a as number, policy)) continue;
      const until = now + policy.blockMs;
      this.exec('INSERT OR REPLACE INTO fraud_blocks (key, until) VALUES (?, ?)', key, until);
      blocks.set(key, { key, until, newly: true });
    }
    return [...blocks.values()].sort((a, b) => a.key.localeCompare(b.key));
  }

  /**
   * sweepHistory is one bounded step of the history's sweep, in every store (addHistory trims a
   * store only when it records), store by store on each one's time index: up to a batch past its
   * age in all, then the oldest beyond the count of each store over it, with each store's count
   * kept. It tells whether work is left for another step.
   */
  sweepHistory(now: number, history: HistoryRetention): boolean {
    let budget = SWEEP_BATCH;
    let over = false;
    for (const row of this.statement('SELECT ns, store, n FROM history_counts').all() as Row[]) {
      let n = row.n as number;
      if (budget > 0) {
        const aged = this.exec(
          'DELETE FROM history WHERE seq IN (SELECT seq FROM history WHERE ns = ? AND store = ? AND time < ? LIMIT ?)',
          row.ns,
          row.store,
          now - history.maxAgeMs,
          budget,
        );
        budget -= aged;
        n = Math.max(0, n - aged);
      } else over = true;
      if (n > history.maxEvents) {
        const excess = n - history.maxEvents;
        n -= this.exec(
          'DELETE FROM history WHERE seq IN (SELECT seq FROM history WHERE ns = ? AND store = ? ORDER BY seq ASC LIMIT ?)',
          row.ns,
          row.store,
          Math.min(TRIM_BATCH, excess),
        );
        if (excess > TRIM_BATCH) over = true;
      }
      if (n !== row.n) this.exec('UPDATE history_counts SET n = ? WHERE ns = ? AND store = ?', n, row.ns, row.store);
    }
    return budget === 0 || over;
  }

  ping(): void {
    this.get('SELECT 1');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** historyRow reads a history row. */
function historyRow(r: Row): HistoryEvent {
  const detail = r.detail === null || r.detail === undefined ? {} : (JSON.parse(r.detail as string) as Pick<HistoryEvent, 'reason' | 'numbers' | 'exhausted'>);
  return {
    seq: r.seq as number,
    namespace: r.ns as string,
    store: r.store as string,
    user: r.user as string,
    type: r.type as HistoryEvent['type'],
    result: r.result as HistoryEvent['result'],
    time: r.time as number,
    actor: r.actor as HistoryEvent['actor'] & string,
    clientIp: r.client_ip as string,
    userAgent: r.user_agent as string,
    role: (r.role as string | null) ?? null,
    ...(r.verification_id !== null ? { verificationId: r.verification_id as string } : {}),
    ...(detail.reason !== undefined ? { reason: detail.reason } : {}),
    ...(detail.numbers !== undefined ? { numbers: detail.numbers } : {}),
    ...(detail.exhausted !== undefined ? { exhausted: detail.exhausted } : {}),
  };
}

/** values is the VALUES list of a multi-row insert of n rows of three columns. */
function values(n: number): string {
  return Array.from({ length: n }, () => '(?, ?, ?)').join(', ');
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

function failureOf(err: unknown): OpFailure {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const code = (err as { code?: unknown }).code;
  return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
}

/**
 * fileIdentity names the file at a path (its device and inode), or undefined when there is none or
 * it cannot be looked at (a volume failing, a directory made unreadable): two connections must open
 * the same file, not a new one made at the path since.
 */
export function fileIdentity(file: string): string | undefined {
  try {
    const st = statSync(file, { bigint: true, throwIfNoEntry: false });
    return st === undefined ? undefined : `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * keepPrivate makes the database file readable by its owner only (it holds full phone numbers): a
 * new file is created 0600, and SQLite gives its -wal and -shm files the same mode; an existing
 * file (and its -wal, -shm) with group or other bits loses them.
 */
function keepPrivate(file: string): void {
  if (file === ':memory:' || file === '') return;
  try {
    closeSync(openSync(file, 'a', 0o600));
  } catch {
    return; // better-sqlite3 says why it cannot open the path
  }
  for (const path of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      const st = statSync(path);
      if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) chmodSync(path, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
