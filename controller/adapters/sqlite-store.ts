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
import { SqliteEngine, type BatchOp, type EngineOp, type OpFailure, type OpResult } from './sqlite-engine.ts';

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

interface Pending {
  op: BatchOp;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

type FromWorker = { type: 'results'; results: string } | { type: 'closed' };

/**
 * SqliteStore is the embedded StateStore: one SQLite file in WAL mode (SqliteEngine), durable
 * across restarts, safe to share between processes. The SQL runs on a thread of its own, so that
 * writing, committing and checkpointing never hold up the event loop that serves HTTP: the
 * operations asked for in one event-loop turn travel as one batch and commit as one transaction
 * (group commit), each atomic on its own. A lock held by another process for longer than the busy
 * timeout, a closed store or a stopped thread answer StoreUnavailableError; a stopped thread is
 * started again by the next operation (no sooner than a second after one that could not start).
 */
export class SqliteStore implements StateStore {
  private queue: Pending[] = [];
  /** Batches sent to the thread and not yet answered, oldest first (the thread answers in order). */
  private readonly inFlight: Pending[][] = [];
  private worker: Worker | undefined;
  /** Whether the current thread has answered a batch: one that stops before it did could not open the file. */
  private workerAnswered = false;
  /** Until when no new thread is started, after one that could not start (ms since the epoch). */
  private restartAfter = 0;
  private startFailure: Error | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  private readonly file: string;
  private readonly options: SqliteStoreOptions;
  private readonly now: () => number;

  constructor(file: string, options: SqliteStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.file = file;
    this.options = options;
    // Opened here once, synchronously, so that a path that cannot be opened fails the constructor
    // and the schema exists before the first operation.
    new SqliteEngine(file, options).close();
  }

  private call<T>(op: EngineOp, ...args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the state database is closed'));
    return new Promise<T>((resolve, reject) => {
      if (this.queue.length === 0 && this.inFlight.length < MAX_BATCHES_IN_FLIGHT) setImmediate(() => this.flush());
      this.queue.push({ op: { op, args }, resolve, reject });
    });
  }

  private flush(): void {
    // With enough batches in flight, what is asked meanwhile waits for the next answer: under load
    // batches grow and commits stay few (adaptive group commit); when idle, an operation goes at once.
    if (this.inFlight.length >= MAX_BATCHES_IN_FLIGHT && !this.closed) return;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    if (this.worker === undefined && this.now() < this.restartAfter) {
      // The last thread could not start: fail fast rather than start one per request.
      for (const p of batch) p.reject(new StoreUnavailableError('the state database could not be opened; retrying shortly', { cause: this.startFailure }));
      return;
    }
    const worker = this.worker ?? this.startWorker();
    this.inFlight.push(batch);
    worker.ref();
    // As JSON text: cheaper to send across than the structured clone of the same objects.
    worker.postMessage({ type: 'batch', ops: JSON.stringify(batch.map((p) => p.op)) });
  }

  private startWorker(): Worker {
    const data = { file: this.file, ...(this.options.busyTimeoutMs !== undefined ? { busyTimeoutMs: this.options.busyTimeoutMs } : {}) };
    // The thread's entry beside this file: sqlite-worker.ts in a source checkout, .js when compiled.
    const here = import.meta.url;
    const worker = new Worker(new URL(`./sqlite-worker${here.slice(here.lastIndexOf('.'))}`, here), { workerData: data });
    worker.on('message', (message: FromWorker) => {
      // A thread given up for stopped answers nothing any more: its batches were failed, and the
      // batches in flight now are a new thread's.
      if (message.type !== 'results' || this.worker !== worker) return;
      this.workerAnswered = true;
      const batch = this.inFlight.shift() ?? [];
      (JSON.parse(message.results) as OpResult[]).forEach((result, i) => {
        const pending = batch[i]!;
        if (result.ok) pending.resolve(result.value);
        else pending.reject(errorOf(result.error));
      });
      if (this.queue.length > 0) this.flush();
      if (this.inFlight.length === 0 && !this.closed) worker.unref();
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
  ): Promise<VerificationRecord | undefined> {
    return this.call('finish', namespace, store, id, status, failure, approvedAt);
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

  ping(): Promise<void> {
    return this.call('ping');
  }

  /** close answers what was asked before it, then closes the file and ends the thread. */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.flush();
    const worker = this.worker;
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

function errorOf(failure: OpFailure): Error {
  if (failure.name === 'StoreUnavailableError') return new StoreUnavailableError(failure.message);
  return Object.assign(new Error(failure.message), { name: failure.name, ...(failure.code !== undefined ? { code: failure.code } : {}) });
}
