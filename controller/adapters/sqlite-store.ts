import { Worker } from 'node:worker_threads';
import type { FraudBlock, FraudPolicy } from '../core/fraud-guard.ts';
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
  ProofSpend,
  ResendResult,
  SendQuota,
  StateStore,
} from '../verifier/state-store.ts';
import { StoreUnavailableError } from '../verifier/state-store.ts';
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
import { fileIdentity, SqliteEngine, type BatchOp, type EngineOp, type OpFailure, type OpResult } from './sqlite-engine.ts';

/** SqliteStoreOptions configure the file store. */
export interface SqliteStoreOptions {
  /** How long a writer waits for a lock held by another process before the store answers unavailable. */
  busyTimeoutMs?: number;
  /** The clock the thread's restart backoff runs on (epoch ms): the real one, or a test's. */
  now?: () => number;
}

/**
 * Batches sent to the thread and not yet answered, at most: enough to keep the thread busy while
 * answers travel back, few enough that under load operations gather into larger batches (fewer
 * commits) instead of queueing up in the thread.
 */
const MAX_BATCHES_IN_FLIGHT = 4;

/** How long after a thread that could not start (the file could not be opened) the next one may start. */
const RESTART_BACKOFF_MS = 1000;

/**
 * Operations that may take long (scans, sweeps, lists of many users, claims of many entries): they
 * always run on the thread, so that they never hold up the event loop. The outbox's three go
 * together, so that a release never overtakes the claim asked before it.
 */
const THREAD_OPS: ReadonlySet<EngineOp> = new Set(['listHistory', 'sweep', 'sweepHistory', 'enrolledAmong', 'outboxClaim', 'outboxSettle', 'outboxRelease']);

/**
 * Operations committed (on the event loop or the thread) between two checkpoints asked of the
 * thread: at a few pages each, about the 1,000 pages at which SQLite checkpoints by itself. Counted
 * in operations, not batches, which grow under load: a checkpoint's pages are copied while the
 * event loop's operations wait.
 */
const CHECKPOINT_EVERY = 200;

/**
 * Operations after which a thread that is never idle (a stream of long operations, a lock another
 * process takes again and again) is asked for a checkpoint all the same, behind its work: neither
 * connection checkpoints by itself, and without one the WAL would grow without bound.
 */
const CHECKPOINT_OVERDUE = 5 * CHECKPOINT_EVERY;

interface Pending {
  op: BatchOp;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

type FromWorker = { type: 'results'; results: string } | { type: 'checkpointed' } | { type: 'closed' };

/**
 * SqliteStore is the embedded StateStore: one SQLite file in WAL mode (SqliteEngine), durable
 * across restarts, safe to share between processes. The operations asked for in one event-loop turn
 * commit as one transaction (group commit), each atomic on its own.
 *
 * Two connections share the work, so that nothing holds up the event loop that serves HTTP for
 * long. The short operations (a verification's steps, an enrollment, a lockout) run on the event
 * loop, on a connection that never waits for a lock and never checkpoints: a commit there only
 * appends a few pages to the WAL, with no sync to disk. Waking another thread for them cost more
 * CPU than running them (docs/benchmarks.md). On a thread of its own run the long operations
 * (history pages, sweeps, the outbox), the WAL's checkpoints (asked every CHECKPOINT_EVERY
 * operations once the thread is idle, or behind its work once overdue, with the write that starts
 * the WAL over after one; the thread's connection does not checkpoint by itself either), and every
 * batch that found the file locked (by another process): those wait there for the lock. Whenever
 * the thread has work, what the event loop is asked joins it there, in order, and what was asked
 * of the event loop before a long operation goes to the thread ahead of it: the two connections
 * never wait for each other's lock, and nothing overtakes what was asked before it. While a
 * checkpoint is unanswered, what the event loop is asked waits for it, then runs on the event
 * loop: the checkpoint copies the whole WAL, which the thread then starts over.
 *
 * The thread opens the file the event loop's connection opened, or none: a file made at the path
 * since (deleted and made again, a volume remounted) would be a second database beside the first
 * one's WAL. Once the store sees one, it refuses every operation until restarted. No file at the
 * path (moved away, deleted) is refused until the same file is back: writes to a deleted file would
 * be lost. The store looks when its thread starts, at checkpoints and at readiness pings (fileThere).
 *
 * A lock held by another process for longer than the busy timeout, a closed store or a stopped
 * thread answer StoreUnavailableError; a stopped thread is started again by the next operation that
 * needs it (no sooner than a second after one that could not start).
 */
export class SqliteStore implements StateStore {
  /** Operations for the event loop's connection, run at the end of this turn. */
  private local: Pending[] = [];
  /** Operations for the thread, sent at the end of this turn or when a batch in flight is answered. */
  private queue: Pending[] = [];
  /** Batches sent to the thread and not yet answered, oldest first (the thread answers in order). */
  private readonly inFlight: Pending[][] = [];
  private worker: Worker | undefined;
  /** Whether the current thread has answered a batch: one that stops before it did could not open the file. */
  private workerAnswered = false;
  /** Until when no new thread is started, after one that could not start (ms since the epoch). */
  private restartAfter = 0;
  private startFailure: Error | undefined;
  /** Whether the thread is checkpointing (it keeps the process alive meanwhile). */
  private checkpointing = false;
  /** Operations committed since the store last asked the thread for a checkpoint. */
  private opsSinceCheckpoint = 0;
  /**
   * What the store last found at its path (fileThere): its own file; none (moved or deleted:
   * operations are refused until the same file is back); or another one (every operation refused).
   */
  private found: 'own' | 'missing' | 'replaced' = 'own';
  /** Whether the thread was started (once; after it stops, the next operation that needs it starts another). */
  private started = false;
  private closed = false;
  private closing: Promise<void> | undefined;

  private readonly engine: SqliteEngine;
  /** The file the event loop's connection opened: the thread opens that one or none. */
  private readonly identity: string;
  private readonly file: string;
  private readonly options: SqliteStoreOptions;
  private readonly now: () => number;

  constructor(file: string, options: SqliteStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.file = file;
    this.options = options;
    // Opened here, synchronously, so that a path that cannot be opened fails the constructor and
    // the schema exists before the first operation.
    if (file === '' || file === ':memory:') throw new Error('the SQLite store needs a file: its two connections share it');
    this.engine = new SqliteEngine(file, { ...(options.busyTimeoutMs !== undefined ? { busyTimeoutMs: options.busyTimeoutMs } : {}), role: 'event-loop' });
    const identity = fileIdentity(file);
    if (identity === undefined) {
      this.engine.close();
      throw new Error('the SQLite store opened its file but cannot read what it is (stat failed)');
    }
    this.identity = identity;
  }

  private call<T>(op: EngineOp, ...args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the state database is closed'));
    if (this.found === 'replaced') return Promise.reject(replacedError());
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { op: { op, args }, resolve, reject };
      if (THREAD_OPS.has(op)) {
        // What the event loop was asked before it goes to the thread first, so that it is not overtaken.
        for (const p of this.local.splice(0)) this.toThread(p);
        this.toThread(pending);
      } else {
        if (this.local.length === 0) setImmediate(() => this.flushLocal());
        this.local.push(pending);
      }
    });
  }

  private toThread(pending: Pending): void {
    if (this.queue.length === 0 && this.inFlight.length < MAX_BATCHES_IN_FLIGHT) setImmediate(() => this.flush());
    this.queue.push(pending);
  }

  /** flushLocal runs this turn's short operations on the event loop's connection, unless the file is locked. */
  private flushLocal(): void {
    // Held while the thread checkpoints: the 'checkpointed' answer runs them (at close, they follow it there).
    if (this.checkpointing && !this.closed) return;
    const batch = this.local;
    this.local = [];
    if (batch.length === 0 || this.refusedForItsFile(batch)) return;
    // While the thread has work (a long operation, a batch that found the file locked, a checkpoint
    // at close), what the event loop is asked joins it there, in order: the store's two connections
    // never wait for each other's lock, and nothing overtakes what was asked before it.
    const threadBusy = this.inFlight.length > 0 || this.queue.length > 0 || this.checkpointing;
    const results = threadBusy ? undefined : this.engine.runBatchUnlessLocked(batch.map((p) => p.op));
    if (results === undefined) {
      // Nothing of the batch ran: it goes to the thread (which waits for the lock), and what follows joins it.
      for (const p of batch) this.toThread(p);
      return;
    }
    settle(batch, results);
    if (!this.started && !this.closed) {
      // The thread starts with the first batch, not at the first checkpoint: what the event loop is
      // asked while a checkpoint is unanswered waits for it, and should not wait for a thread to start.
      this.started = true;
      this.toThread({ op: { op: 'ping', args: [] }, resolve: () => undefined, reject: () => undefined });
    }
    this.opsSinceCheckpoint += batch.length;
    this.checkpointIfDue();
  }

  /**
   * checkpointIfDue asks the thread to copy the WAL into the file (the event loop's connection never
   * does) once CHECKPOINT_EVERY operations were committed since the last time, of an idle thread:
   * behind long operations it would hold the event loop's for as long as they take. A thread that
   * is never idle is asked all the same once CHECKPOINT_OVERDUE operations went by.
   */
  private checkpointIfDue(): void {
    const idle = this.inFlight.length === 0 && this.queue.length === 0;
    if (this.checkpointing || this.opsSinceCheckpoint < (idle ? CHECKPOINT_EVERY : CHECKPOINT_OVERDUE)) return;
    // Closing: the thread's connection, the last to close, copies the WAL then.
    if (this.closed || this.restartBackingOff()) return;
    // Nor into a file that is no longer the one at the path.
    if (!this.fileThere()) return;
    const worker = this.worker ?? this.startWorker();
    if (worker === undefined) return;
    this.opsSinceCheckpoint = 0;
    this.checkpointing = true;
    worker.ref();
    worker.postMessage({ type: 'checkpoint' });
  }

  private flush(): void {
    // With enough batches in flight, what is asked meanwhile waits for the next answer: under load
    // batches grow and commits stay few (adaptive group commit); when idle, an operation goes at once.
    if (this.inFlight.length >= MAX_BATCHES_IN_FLIGHT && !this.closed) return;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    if (this.restartBackingOff()) {
      // The last thread could not start: fail fast rather than start one per request.
      for (const p of batch) p.reject(new StoreUnavailableError('the state database could not be opened; retrying shortly', { cause: this.startFailure }));
      return;
    }
    if (this.refusedForItsFile(batch)) return;
    const worker = this.worker ?? this.startWorker();
    if (worker === undefined) {
      for (const p of batch) p.reject(replacedError());
      return;
    }
    this.inFlight.push(batch);
    this.opsSinceCheckpoint += batch.length;
    worker.ref();
    // As JSON text: cheaper to send across than the structured clone of the same objects.
    worker.postMessage({ type: 'batch', ops: JSON.stringify(batch.map((p) => p.op)) });
  }

  /**
   * fileThere tells whether the file the store opened is at its path. Another file there (deleted
   * and made again, a volume remounted) is refused for good, with every operation waiting: the
   * store must be restarted to open it. No file there (moved away, deleted, a volume gone) is
   * refused until the same file is back: what is written to a deleted file is lost when the store
   * stops, and the store must not say it kept it. Looked at when the thread starts, at each
   * checkpoint, at each readiness ping and, while the file is missing, at each batch.
   */
  private fileThere(): boolean {
    if (this.found === 'replaced') return false;
    const identity = fileIdentity(this.file);
    this.found = identity === this.identity ? 'own' : identity === undefined ? 'missing' : 'replaced';
    if (this.found === 'replaced') for (const p of [...this.local.splice(0), ...this.queue.splice(0)]) p.reject(replacedError());
    return this.found === 'own';
  }

  /** refusedForItsFile refuses a batch while the store's file is not at its path (looked at again first), and tells whether it did. */
  private refusedForItsFile(batch: readonly Pending[]): boolean {
    if (this.found === 'own' || this.fileThere()) return false;
    for (const p of batch) p.reject(this.found === 'replaced' ? replacedError() : missingError());
    return true;
  }

  /** restartBackingOff tells whether no thread may start yet, the last one having failed to. */
  private restartBackingOff(): boolean {
    return this.worker === undefined && this.now() < this.restartAfter;
  }

  /** startWorker starts the thread, unless the file at the path is another one than the store opened. */
  private startWorker(): Worker | undefined {
    // A missing file is left to the thread, which cannot open it: the restart's back-off applies.
    this.fileThere();
    if (this.found === 'replaced') return undefined;
    const data = {
      file: this.file,
      identity: this.identity,
      ...(this.options.busyTimeoutMs !== undefined ? { busyTimeoutMs: this.options.busyTimeoutMs } : {}),
    };
    // The thread's entry beside this file: sqlite-worker.ts in a source checkout, .js when compiled.
    const here = import.meta.url;
    const worker = new Worker(new URL(`./sqlite-worker${here.slice(here.lastIndexOf('.'))}`, here), { workerData: data });
    worker.on('message', (message: FromWorker) => {
      // A thread given up for stopped answers nothing any more: its batches were failed, and the
      // batches in flight now are a new thread's.
      if (message.type === 'closed' || this.worker !== worker) return;
      this.workerAnswered = true;
      if (message.type === 'checkpointed') {
        this.checkpointing = false;
        this.flushLocal();
      } else {
        settle(this.inFlight.shift() ?? [], JSON.parse(message.results) as OpResult[]);
        if (this.queue.length > 0) this.flush();
        this.checkpointIfDue();
      }
      if (this.inFlight.length === 0 && !this.checkpointing && !this.closed) worker.unref();
    });
    worker.on('error', (err: Error) => this.stopped(worker, err));
    worker.on('exit', (code) => this.stopped(worker, new Error(`the SQLite thread exited with code ${code}`)));
    this.worker = worker;
    this.workerAnswered = false;
    return worker;
  }

  /** stopped fails what the thread had not answered; the next operation starts a new thread. */
  private stopped(worker: Worker, cause: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    if (this.checkpointing) {
      this.checkpointing = false;
      setImmediate(() => this.flushLocal());
    }
    if (!this.workerAnswered) {
      this.restartAfter = this.now() + RESTART_BACKOFF_MS;
      this.startFailure = cause;
    }
    const lost = this.inFlight.splice(0);
    for (const batch of lost) for (const p of batch) p.reject(new StoreUnavailableError('the state database thread stopped', { cause }));
    // What waited for those answers goes to a new thread.
    if (this.queue.length > 0 && !this.closed) setImmediate(() => this.flush());
  }

  createVerification(
    record: VerificationRecord,
    idempotency: Idempotency | undefined,
    quotas: readonly SendQuota[],
    proof?: ProofSpend,
    enrolled?: EnrollmentExpected,
  ): Promise<CreateResult> {
    return this.call('createVerification', record, idempotency, quotas, proof, enrolled);
  }

  getVerification(namespace: string, store: string, id: string): Promise<VerificationRecord | undefined> {
    return this.call('getVerification', namespace, store, id);
  }

  attempt(
    namespace: string,
    store: string,
    id: string,
    now: number,
    candidates: readonly CodeMac[],
    audit?: AttemptAudit,
  ): Promise<AttemptOutcome | undefined> {
    return this.call('attempt', namespace, store, id, now, candidates, audit);
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
    return this.call('finish', namespace, store, id, status, failure, approvedAt, audit);
  }

  beginResend(namespace: string, store: string, id: string, now: number, code: CodeMac, quotas: readonly SendQuota[]): Promise<ResendResult | undefined> {
    return this.call('beginResend', namespace, store, id, now, code, quotas);
  }

  setDelivery(namespace: string, store: string, id: string, delivery: Delivery): Promise<void> {
    return this.call('setDelivery', namespace, store, id, delivery);
  }

  recordSent(ref: MessageRef, provider: string, delivery: Delivery & { messageId: string }, now: number, ttlMs: number): Promise<void> {
    return this.call('recordSent', ref, provider, delivery, now, ttlMs);
  }

  findMessage(provider: string, messageId: string, now: number): Promise<MessageRef | undefined> {
    return this.call('findMessage', provider, messageId, now);
  }

  fraudBlocks(keys: readonly string[], now: number): Promise<FraudBlock[]> {
    return this.call('fraudBlocks', keys, now);
  }

  fraudStart(keys: readonly string[], now: number, policy: FraudPolicy, publish?: FraudPublish): Promise<FraudBlock[]> {
    return this.call('fraudStart', keys, now, policy, publish);
  }

  fraudApproved(keys: readonly string[], now: number, policy: FraudPolicy): Promise<void> {
    return this.call('fraudApproved', keys, now, policy);
  }

  outboxClaim(namespace: string, store: string, holder: string, now: number, leaseMs: number, limit: number, afterSeq = 0): Promise<OutboxEntry[] | undefined> {
    return this.call('outboxClaim', namespace, store, holder, now, leaseMs, limit, afterSeq);
  }

  outboxSettle(namespace: string, store: string, holder: string, done: readonly number[], retry: readonly OutboxRetry[]): Promise<boolean> {
    return this.call('outboxSettle', namespace, store, holder, done, retry);
  }

  outboxRelease(namespace: string, store: string, holder: string): Promise<void> {
    return this.call('outboxRelease', namespace, store, holder);
  }

  putAlias(namespace: string, store: string, alias: string, id: string, now: number, ttlMs: number): Promise<void> {
    return this.call('putAlias', namespace, store, alias, id, now, ttlMs);
  }

  getAlias(namespace: string, store: string, alias: string, now: number): Promise<string | undefined> {
    return this.call('getAlias', namespace, store, alias, now);
  }

  getEnrollment(namespace: string, store: string, user: string): Promise<Enrollment | undefined> {
    return this.call('getEnrollment', namespace, store, user);
  }

  enrolledAmong(namespace: string, store: string, users: readonly string[]): Promise<string[]> {
    return this.call('enrolledAmong', namespace, store, users);
  }

  putEnrollment(namespace: string, store: string, enrollment: Enrollment): Promise<void> {
    return this.call('putEnrollment', namespace, store, enrollment);
  }

  deleteEnrollment(namespace: string, store: string, user: string, audit?: AuditWrite, proof?: ProofSpend): Promise<DeleteResult> {
    return this.call('deleteEnrollment', namespace, store, user, audit, proof);
  }

  getLockout(namespace: string, store: string, user: string, now: number): Promise<LockoutState> {
    return this.call('getLockout', namespace, store, user, now);
  }

  clearLockout(namespace: string, store: string, user: string, now: number, audit: AuditWrite): Promise<boolean> {
    return this.call('clearLockout', namespace, store, user, now, audit);
  }

  addHistory(event: Omit<HistoryEvent, 'seq'>, retention: HistoryRetention): Promise<void> {
    return this.call('addHistory', event, retention);
  }

  listHistory(namespace: string, store: string, query: HistoryQuery): Promise<HistoryPage> {
    return this.call('listHistory', namespace, store, query);
  }

  async sweep(now: number, history: HistoryRetention): Promise<void> {
    await this.call('sweep', now);
    // History step by step, each its own transaction, so that a large excess never holds the file long.
    while (await this.call<boolean>('sweepHistory', now, history));
  }

  /** ping answers once the file answers; it also looks at the file at the path (fileThere), so that readiness says when it is gone. */
  ping(): Promise<void> {
    this.fileThere();
    return this.call('ping');
  }

  /** close answers what was asked before it, then closes the file and ends the thread. */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    // What the event loop was asked runs now, or goes to the thread if the file is locked.
    this.flushLocal();
    this.flush();
    const worker = this.worker;
    // Closed first, so that the thread's connection, the last one, copies the WAL into the file
    // there; without a thread, this one does it.
    this.engine.close();
    if (worker === undefined) return;
    worker.ref();
    await new Promise<void>((resolve) => {
      worker.on('message', (message: FromWorker) => {
        if (message.type === 'closed') resolve();
      });
      worker.once('exit', () => resolve());
      worker.postMessage({ type: 'close' });
    });
  }
}

function replacedError(): StoreUnavailableError {
  return new StoreUnavailableError('the state database file was replaced since the store opened it: restart to open the new one');
}

function missingError(): StoreUnavailableError {
  return new StoreUnavailableError('the state database file is no longer at its path (moved or deleted): refused until it is back');
}

/** settle answers a batch's operations with their results, in order. */
function settle(batch: readonly Pending[], results: readonly OpResult[]): void {
  results.forEach((result, i) => {
    const pending = batch[i]!;
    if (result.ok) pending.resolve(result.value);
    else pending.reject(errorOf(result.error));
  });
}

function errorOf(failure: OpFailure): Error {
  if (failure.name === 'StoreUnavailableError') return new StoreUnavailableError(failure.message);
  return Object.assign(new Error(failure.message), { name: failure.name, ...(failure.code !== undefined ? { code: failure.code } : {}) });
}
